/**
 * The API under test: the real Fastify app on a fresh database and the test Temporal
 * server, called through `app.inject`. Credentials are minted the way a shop's login would.
 */
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/app';
import type { StaffRole } from '../../src/api/access';
import { customerToken, staffToken } from '../../src/api/tokens';
import { DEV_ADMIN_API_KEY, type Config } from '../../src/config';
import type { Logger } from '../../src/logger';
import { createTemporalClient, type TemporalClient } from '../../src/temporal';
import type { TestDatabase } from './db';
import { testConfig, testLog } from './env';

export interface TestApi {
  app: FastifyInstance;
  config: Config;
  temporal: TemporalClient;
  /** `authorization` header of a customer (their `sub`). */
  customer(customerId: string): { authorization: string };
  /** `authorization` header of an admin with a staff JWT. */
  admin(adminId?: string): { authorization: string };
  /** `authorization` header of a staff member with this role. */
  staff(role: StaffRole, staffId?: string): { authorization: string };
  /** `x-api-key` header with the development admin key. */
  adminKey(): { 'x-api-key': string };
  close(): Promise<void>;
}

export async function startTestApi(opts: {
  database: TestDatabase;
  env?: Record<string, string>;
  /** Where the API logs (default: the quiet test logger). */
  log?: Logger;
}): Promise<TestApi> {
  const config = testConfig({ DATABASE_URL: opts.database.url, ...opts.env });
  const temporal = createTemporalClient(config);
  const app = await buildApi({
    config,
    db: opts.database.db,
    temporal,
    log: opts.log ?? testLog,
  });
  await app.ready();
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  return {
    app,
    config,
    temporal,
    customer: (customerId) => bearer(customerToken(config, customerId)),
    admin: (adminId = 'alice') => bearer(staffToken(config, adminId, 'admin')),
    staff: (role, staffId = `${role}-1`) => bearer(staffToken(config, staffId, role)),
    adminKey: () => ({ 'x-api-key': DEV_ADMIN_API_KEY }),
    async close() {
      await app.close();
      await temporal.connection.close();
    },
  };
}
