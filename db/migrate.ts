/**
 * `npm run migrate`: applies pending migrations to DATABASE_URL (or the embedded dev
 * database when it is running). Exits non-zero and names the failed migration.
 */
import { loadConfig, redactUrl } from '../src/config';
import { assertDatabaseReachable, runMain } from '../src/main-helpers';
import { createDb } from './client';
import { migrateToLatest } from './migrator';

runMain(async () => {
  const config = loadConfig();
  const db = createDb({ url: config.database.url, poolMax: 1 });
  try {
    await assertDatabaseReachable(db, config.database.url);
    const applied = await migrateToLatest(db);
    console.log(
      applied.length === 0
        ? `database ${redactUrl(config.database.url)} is up to date`
        : applied.map((name) => `applied ${name}`).join('\n'),
    );
  } finally {
    await db.destroy();
  }
});
