/**
 * `npm run temporal:cli`: finds (or builds, the first time) the Temporal CLI and prints
 * where it is. `.ci/run` calls it so a fresh machine builds the CLI before the tests start.
 */
import { loadConfig } from '../src/config';
import { runMain } from '../src/main-helpers';
import { resolveTemporalCli } from './temporal-cli';

runMain(async () => {
  const config = loadConfig();
  const cli = await resolveTemporalCli({
    cliPath: config.temporal.cliPath,
    cacheDir: config.paths.cacheDir,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const where =
    cli.executable.type === 'existing-path'
      ? cli.executable.path
      : `SDK download into ${cli.executable.downloadDir}`;
  process.stdout.write(`Temporal CLI (${cli.source}): ${where}\n`);
});
