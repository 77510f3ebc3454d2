import fs from 'node:fs/promises';

export default async function globalTeardown(): Promise<void> {
  const servers = globalThis.__WAYBILL_TEST_SERVERS__;
  if (!servers) return;
  await servers.temporal?.stop();
  await servers.postgres.stop();
  await fs.rm(servers.tmpDir, { recursive: true, force: true });
}
