/**
 * A CSV export as a stream, on real Postgres through a real socket: a client that hangs up
 * mid-stream closes the cursor and gives the connection back (seen in pg_stat_activity), and
 * exports beyond the export connections are refused with 503 rather than queued.
 */
import http from 'node:http';
import { sql } from 'kysely';
import { EXPORT_APPLICATION_NAME, EXPORT_CONNECTIONS } from '../../src/api/routes/exports';
import { eventually } from '../support/eventually';
import { useStack } from '../support/stack';

jest.setTimeout(120_000);

const ROWS = 50_000;
const EXPORT = '/v1/admin/exports/orders?from=2026-11-01&to=2026-11-01';

describe('a CSV export as a stream', () => {
  const stack = useStack({
    payments: false,
    worker: false,
    api: { env: { WAYBILL_RATE_LIMIT_PER_MINUTE: '100000' } },
  });
  let port: number;

  beforeAll(async () => {
    await sql`
      insert into orders (id, number, customer_id, email, postcode, currency, total_amount, courier,
                          shipping_address, created_at)
      select 'ord_many_' || i, 'WB-M' || i, 'cus_many', 'many' || i || '@example.com', '40000', 'MYR',
             100 + i, 'easyparcel',
             jsonb_build_object('name', 'Shopper ' || i, 'city', 'Shah Alam', 'country', 'MY'),
             timestamptz '2026-11-01' + i * interval '1 second'
      from generate_series(1, ${ROWS}) as i`.execute(stack.database.db);
    await stack.api.app.listen({ host: '127.0.0.1', port: 0 });
    port = (stack.api.app.server.address() as { port: number }).port;
  });

  /** The export connections' sessions in Postgres, by state. */
  const exportSessions = async () =>
    (
      await sql<{ state: string | null }>`
        select state from pg_stat_activity
        where application_name = ${EXPORT_APPLICATION_NAME} and datname = current_database()`.execute(
        stack.database.db,
      )
    ).rows.map((r) => r.state);
  const allIdle = () => eventually(exportSessions, (states) => states.every((s) => s === 'idle'), 20_000);

  /** Starts an export and stops reading after its first bytes; resolves with the request to hang up. */
  function startExport(): Promise<http.ClientRequest> {
    return new Promise((resolve, reject) => {
      const req = http.get(`http://127.0.0.1:${port}${EXPORT}`, { headers: stack.api.admin() }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`export answered ${res.statusCode}`));
          return;
        }
        res.once('data', () => {
          res.pause();
          resolve(req);
        });
      });
      req.on('error', (err) => {
        if (!req.destroyed) reject(err);
      });
    });
  }

  /** startExport, asked again while the export connections are still coming back (503). */
  async function startExportWhenFree(): Promise<http.ClientRequest> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        return await startExport();
      } catch (err) {
        if (!String(err).includes('answered 503') || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  it('closes the cursor and gives the connection back when the client leaves, and later exports run to the end', async () => {
    // More hang-ups than there are export connections: a leak would refuse the last ones.
    for (let i = 0; i < EXPORT_CONNECTIONS + 2; i++) {
      const req = await startExport();
      // Mid-stream the cursor is open: the session is busy, not back in the pool.
      expect((await exportSessions()).some((s) => s !== 'idle')).toBe(true);
      req.destroy();
      await allIdle();
    }
    const res = await stack.api.app.inject({ url: EXPORT, headers: stack.api.admin() });
    expect(res.statusCode).toBe(200);
    const lines = res.body.trimEnd().split('\n');
    expect(lines).toHaveLength(ROWS + 1);
    expect(lines[ROWS]).toContain(`,ord_many_${ROWS},WB-M${ROWS},`);
    expect((await exportSessions()).every((s) => s === 'idle')).toBe(true);
  });

  it('refuses an export beyond the export connections with 503 EXPORTS_BUSY, and takes one again when one ends', async () => {
    const open: http.ClientRequest[] = [];
    try {
      // The pool takes back a hung-up export's client a moment after its session is idle.
      for (let i = 0; i < EXPORT_CONNECTIONS; i++) open.push(await startExportWhenFree());
      const refused = await stack.api.app.inject({ url: EXPORT, headers: stack.api.admin() });
      expect(refused.statusCode).toBe(503);
      expect(refused.json()).toMatchObject({ error: { code: 'EXPORTS_BUSY' } });
      expect(refused.headers['retry-after']).toBe('5');

      open.shift()!.destroy();
      // The hung-up export's connection comes back: an export is taken again (an empty day's is quick).
      const empty = '/v1/admin/exports/orders?from=2026-10-01&to=2026-10-01';
      const again = await eventually(
        () => stack.api.app.inject({ url: empty, headers: stack.api.admin() }),
        (res) => res.statusCode !== 503,
      );
      expect(again.statusCode).toBe(200);
    } finally {
      for (const req of open) req.destroy();
    }
    await allIdle();
  });
});
