import { type Kysely, Migrator, type MigrationResultSet } from 'kysely';
import { migrations } from './migrations';

export class MigrationError extends Error {
  override name = 'MigrationError';
  constructor(
    readonly migration: string | null,
    override readonly cause: unknown,
  ) {
    super(
      migration
        ? `migration ${migration} failed: ${(cause as Error)?.message ?? String(cause)}`
        : `migrations could not run: ${(cause as Error)?.message ?? String(cause)}`,
    );
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function createMigrator(db: Kysely<any>): Migrator {
  return new Migrator({ db, provider: { getMigrations: async () => migrations } });
}

/** Applies every pending migration; throws {@link MigrationError} naming the one that failed. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const result: MigrationResultSet = await createMigrator(db).migrateToLatest();
  const failed = result.results?.find((r) => r.status === 'Error');
  if (result.error) throw new MigrationError(failed?.migrationName ?? null, result.error);
  return (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
