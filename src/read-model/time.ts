import { sql } from 'kysely';

/** The database's now minus `ms` milliseconds: ages are judged by Postgres's clock. */
export const ago = (ms: number) => sql<Date>`now() - ${ms} * interval '1 millisecond'`;
