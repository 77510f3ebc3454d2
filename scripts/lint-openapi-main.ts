/**
 * `npm run lint:openapi`: builds the real API app, reads GET /openapi.json from it and
 * prints Spectral's OWASP findings (see scripts/openapi-lint.ts); exits 1 on any error.
 * Needs no Postgres or Temporal: the app connects to both lazily.
 */
import { buildApi } from '../src/api/app';
import { createDb } from '../db/client';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { runMain } from '../src/main-helpers';
import { createTemporalClient } from '../src/temporal';
import { countFindings, lintOpenApi } from './openapi-lint';

runMain(async () => {
  const config = loadConfig();
  const log = createLogger(config).child({ component: 'lint-openapi' });
  const db = createDb({ url: config.database.url, poolMax: 1, onError: () => undefined });
  const temporal = createTemporalClient(config);
  const app = await buildApi({ config, db, temporal, log });
  try {
    const document = (await app.inject({ url: '/openapi.json' })).json();
    const findings = await lintOpenApi(document);
    for (const finding of findings) {
      process.stdout.write(`${finding.severity}\t${finding.rule}\t${finding.where}\t${finding.message}\n`);
    }
    const { bySeverity, byRule } = countFindings(findings);
    for (const [rule, count] of Object.entries(byRule).sort()) process.stdout.write(`${count}\t${rule}\n`);
    process.stdout.write(`${findings.length} findings: ${JSON.stringify(bySeverity)}\n`);
    if ((bySeverity.error ?? 0) > 0) process.exitCode = 1;
  } finally {
    await app.close();
    await temporal.connection.close();
    await db.destroy();
  }
});
