/** `npm run seed`: the demo catalogue into the configured database (after `npm run migrate`). */
import { loadConfig } from '../src/config';
import { assertDatabaseReachable, runMain } from '../src/main-helpers';
import { createDb } from './client';
import { DEMO_CATALOGUE, seedCatalogue } from './seed';

runMain(async () => {
  const config = loadConfig();
  const db = createDb({ url: config.database.url });
  try {
    await assertDatabaseReachable(db, config.database.url);
    const added = await seedCatalogue(db);
    process.stdout.write(
      `catalogue: ${added} of ${DEMO_CATALOGUE.length} skus added (the rest were there)\n`,
    );
  } finally {
    await db.destroy();
  }
});
