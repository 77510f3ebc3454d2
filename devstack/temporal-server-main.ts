/**
 * `npm run temporal:server`: finds (or builds, the first time) the real Temporal server and its
 * SQL tool and prints where they are. `.ci/run` calls it so a fresh machine builds them before
 * the tests start (the server-target smoke test needs them).
 */
import { loadConfig } from '../src/config';
import { runMain } from '../src/main-helpers';
import { resolveTemporalServer, TEMPORAL_SERVER_VERSION } from './temporal-server-target';

runMain(async () => {
  const config = loadConfig();
  const found = await resolveTemporalServer({
    cacheDir: config.paths.cacheDir,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(
    `Temporal server ${TEMPORAL_SERVER_VERSION} (${found.source}): ${found.server}\nits SQL tool: ${found.sqlTool}\n`,
  );
});
