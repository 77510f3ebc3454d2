/**
 * Parcel imports through the HTTP API on the real stack: the import workflow on a real
 * worker, shipment workflows polling the courier simulator over HTTP, results read back
 * from Postgres.
 */
import { CourierCode } from '../../src/couriers/types';
import { shipmentWorkflowId } from '../../src/workflows/contract';
import { importWorkflowId } from '../../src/workflows/import';
import { eventually } from '../support/eventually';
import { fastPolicy, stillPolicy, uniqueId } from '../support/temporal';
import { useStack } from '../support/stack';

jest.setTimeout(120_000);

type Progress = {
  importId: string;
  status: string;
  total: number;
  done: number;
  counts: { started: number; alreadyTracked: number; rejected: number };
  lines: {
    line: number;
    trackingNumber: string | null;
    result: string;
    reason: string | null;
    shipmentId: string | null;
  }[];
  nextAfterLine: number | null;
};

describe('importing parcels already in flight', () => {
  const stack = useStack({
    api: { env: { WAYBILL_RATE_LIMIT_PER_MINUTE: '100000' } },
    // A budget this large spreads first polls only milliseconds apart (tests cannot wait minutes).
    worker: { dailyBudget: 1_000_000, pollPolicy: fastPolicy() },
  });

  const newNumber = (scenario: 'delivered' | 'never_picked_up' = 'never_picked_up') =>
    stack.couriers.backend.register({ scenario, format: 'native' }).trackingNumber;
  const postJson = (payload: unknown, headers = stack.api.admin()) =>
    stack.api.app.inject({ method: 'POST', url: '/v1/admin/imports', headers, payload: payload as object });
  const postCsv = (csv: string) =>
    stack.api.app.inject({
      method: 'POST',
      url: '/v1/admin/imports',
      headers: { ...stack.api.admin(), 'content-type': 'text/csv' },
      payload: csv,
    });
  const progress = async (importId: string, query = '') => {
    const res = await stack.api.app.inject({
      url: `/v1/admin/imports/${importId}${query}`,
      headers: stack.api.admin(),
    });
    expect(res.statusCode).toBe(200);
    return res.json<Progress>();
  };
  /** Hands the import's workflow to the stack (terminated after the test if still open), waits for DONE. */
  async function finished(importId: string): Promise<Progress> {
    stack.started(stack.worker.client.workflow.getHandle(importWorkflowId(importId)));
    return eventually(
      () => progress(importId),
      (p) => p.status === 'DONE',
    );
  }
  const stopTracking = async (shipmentIds: (string | null)[]) => {
    for (const id of shipmentIds) {
      if (id) stack.started(stack.worker.client.workflow.getHandle(shipmentWorkflowId(id)));
    }
  };

  it('a mixed list gets one result per line, and an imported parcel is tracked to DELIVERED', async () => {
    const delivered = newNumber('delivered');
    const other = newNumber();
    const tracked = newNumber();
    await stack.database.db
      .insertInto('shipments')
      .values({ id: uniqueId('shp'), courier: CourierCode.SIMULATOR, tracking_number: tracked })
      .execute();
    const res = await postJson({
      parcels: [
        {
          courier: 'simulator',
          trackingNumber: delivered,
          orderReference: 'OLD-1',
          email: 'a@example.com',
          postcode: '40000',
        },
        { courier: 'simulator', trackingNumber: ` ${delivered.toLowerCase()} ` },
        { courier: 'simulator', trackingNumber: tracked },
        { courier: 'dhl', trackingNumber: 'JD014600003828' },
        { courier: 'simulator', trackingNumber: 'EP12345678' },
        { courier: 'simulator', trackingNumber: other, email: 'not-an-email' },
        { courier: 'simulator' },
      ],
    });
    expect(res.statusCode).toBe(202);
    const { importId, total } = res.json<{ importId: string; total: number }>();
    expect(total).toBe(7);

    const done = await finished(importId);
    await stopTracking(done.lines.map((l) => (l.result === 'started' ? l.shipmentId : null)));
    expect(done.done).toBe(7);
    expect(done.counts).toEqual({ started: 1, alreadyTracked: 2, rejected: 4 });
    expect(done.lines.map((l) => [l.line, l.result])).toEqual([
      [1, 'started'],
      [2, 'already_tracked'],
      [3, 'already_tracked'],
      [4, 'rejected'],
      [5, 'rejected'],
      [6, 'rejected'],
      [7, 'rejected'],
    ]);
    const reasons = done.lines.map((l) => l.reason);
    expect(reasons[0]).toBeNull();
    expect(reasons[1]).toBe('same parcel as line 1 of this import');
    expect(reasons[2]).toMatch(/^tracked already as shipment shp_/);
    expect(reasons[3]).toBe('unknown courier "dhl"');
    expect(reasons[4]).toMatch(/is not a simulator number/);
    expect(reasons[5]).toMatch(/not-an-email.*is not an e-mail address/);
    expect(reasons[6]).toBe('missing trackingNumber');

    // The parcel is tracked like any other: its own shipment workflow, the read model, the guest read.
    const shipmentId = `simulator-${delivered}`;
    expect(done.lines[0]!.shipmentId).toBe(shipmentId);
    const shipment = await eventually(
      () =>
        stack.database.db
          .selectFrom('shipments')
          .selectAll()
          .where('id', '=', shipmentId)
          .executeTakeFirstOrThrow(),
      (s) => s.status === 'DELIVERED',
    );
    expect(shipment.order_id).toBeNull();
    const described = await stack.worker.client.workflow.getHandle(shipmentWorkflowId(shipmentId)).describe();
    expect(described.type).toBe('shipmentWorkflow');
    // The import starts it with room for a poll's task on a busy worker.
    expect(Number(described.raw.executionConfig?.defaultWorkflowTaskTimeout?.seconds)).toBe(30);
    const guest = await stack.api.app.inject({ url: `/v1/tracking/${delivered}` });
    expect(guest.statusCode).toBe(200);
    expect(guest.json<{ status: string }>().status).toBe('DELIVERED');
    const queue = await stack.api.app.inject({
      url: '/v1/admin/shipments?status=DELIVERED&courier=simulator',
      headers: stack.api.admin(),
    });
    expect(queue.json<{ items: { shipmentId: string }[] }>().items.map((i) => i.shipmentId)).toContain(
      shipmentId,
    );
  });

  it('a CSV upload imports the same way, and importing a parcel twice answers already tracked', async () => {
    const first = newNumber();
    const second = newNumber();
    const one = await postCsv(
      `Courier,Tracking Number,Order Reference,Email,Postcode\nsimulator,${first},OLD-7,b@example.com,40000\n`,
    );
    expect(one.statusCode).toBe(202);
    const a = await finished(one.json<{ importId: string }>().importId);
    expect(a.lines.map((l) => l.result)).toEqual(['started']);
    await stopTracking([a.lines[0]!.shipmentId]);

    const two = await postCsv(
      `courier,tracking_number\r\nsimulator,${first}\r\n\r\nsimulator,${second}\r\nsimulator,SIM\r\n`,
    );
    expect(two.statusCode).toBe(202);
    const b = await finished(two.json<{ importId: string }>().importId);
    await stopTracking(b.lines.map((l) => (l.result === 'started' ? l.shipmentId : null)));
    expect(b.lines.map((l) => [l.trackingNumber, l.result])).toEqual([
      [first, 'already_tracked'],
      [second, 'started'],
      ['SIM', 'rejected'],
    ]);
    expect(b.lines[0]!.reason).toBe(`tracked already as shipment simulator-${first}`);
    const source = await stack.database.db
      .selectFrom('parcel_imports')
      .select('source')
      .where('id', '=', b.importId)
      .executeTakeFirstOrThrow();
    expect(source.source).toBe('csv');
  });

  it('progress is readable while an import runs, and a batch run twice changes nothing', async () => {
    // An API whose task queue no worker serves: the import waits, and its batches are run here by hand.
    const idle = await stack.anotherApi({
      env: { WAYBILL_RATE_LIMIT_PER_MINUTE: '100000', WAYBILL_TASK_QUEUE: uniqueId('nobody') },
    });
    const numbers = Array.from({ length: 150 }, () => newNumber());
    const res = await idle.app.inject({
      method: 'POST',
      url: '/v1/admin/imports',
      headers: idle.admin(),
      payload: { parcels: numbers.map((trackingNumber) => ({ courier: 'simulator', trackingNumber })) },
    });
    expect(res.statusCode).toBe(202);
    const { importId } = res.json<{ importId: string }>();
    stack.started(idle.temporal.client.workflow.getHandle(importWorkflowId(importId)));
    const before = await progress(importId);
    expect([before.status, before.done, before.total]).toEqual(['RUNNING', 0, 150]);

    const batch = {
      importId,
      fromLine: 1,
      toLine: 100,
      // Polled once, then not for ten minutes: 100 parcels polling all the time would only load the machine.
      policy: stillPolicy(),
      taskQueue: stack.worker.taskQueue,
    };
    await stack.worker.activities.importLines(batch);
    const midway = await progress(importId, '?limit=60');
    expect([midway.status, midway.done, midway.counts.started]).toEqual(['RUNNING', 100, 100]);
    expect(midway.lines).toHaveLength(60);
    expect(midway.nextAfterLine).toBe(60);
    const pending = await progress(importId, '?result=pending&limit=500');
    expect(pending.lines.map((l) => l.line)).toEqual(Array.from({ length: 50 }, (_, i) => 101 + i));

    await stack.worker.activities.importLines(batch);
    const again = await progress(importId);
    expect(again.counts).toEqual({ started: 100, alreadyTracked: 0, rejected: 0 });
    const rows = await stack.database.db
      .selectFrom('shipments')
      .select(['id', 'next_poll_at'])
      .where('tracking_number', 'in', numbers)
      .execute();
    expect(rows).toHaveLength(100);
    await stopTracking(rows.map((r) => r.id));
  });

  it('refuses a malformed body or CSV header with a 4xx naming the problem', async () => {
    // An API of its own: the imports route allows few requests per minute per caller.
    const api = await stack.anotherApi({ env: { WAYBILL_RATE_LIMIT_PER_MINUTE: '100000' } });
    const postJson = (payload: unknown) =>
      api.app.inject({
        method: 'POST',
        url: '/v1/admin/imports',
        headers: api.admin(),
        payload: payload as object,
      });
    const postCsv = (csv: string) =>
      api.app.inject({
        method: 'POST',
        url: '/v1/admin/imports',
        headers: { ...api.admin(), 'content-type': 'text/csv' },
        payload: csv,
      });
    const cases = [
      { res: await postJson({}), status: 400, message: /parcels/ },
      { res: await postJson({ parcels: [] }), status: 400, message: /parcels/ },
      {
        res: await postJson({ parcels: [{ courier: 'simulator', trackingNo: 'SIM1234' }] }),
        status: 400,
        message: /trackingNo/,
      },
      {
        res: await postCsv('carrier,trackingNumber\nsimulator,SIM1234\n'),
        status: 400,
        message: /unknown column "carrier"/,
      },
      {
        res: await postCsv('courier,email\nsimulator,a@example.com\n'),
        status: 400,
        message: /no "trackingNumber" column/,
      },
      {
        res: await postCsv('courier,trackingNumber\nsimulator,SIM1234,extra\n'),
        status: 400,
        message: /CSV body cannot be read/,
      },
      { res: await postCsv('courier,trackingNumber\n'), status: 400, message: /no parcels/ },
    ];
    for (const { res, status, message } of cases) {
      expect(res.statusCode).toBe(status);
      expect(res.json<{ error: { message: string } }>().error.message).toMatch(message);
    }
    const big = await postCsv(`courier,trackingNumber\n${'simulator,SIM1234567890\n'.repeat(100_000)}`);
    expect(big.statusCode).toBe(413);
    expect(big.json<{ error: { code: string } }>().error.code).toBe('PAYLOAD_TOO_LARGE');
    const plain = await api.app.inject({
      method: 'POST',
      url: '/v1/admin/imports',
      headers: { ...api.admin(), 'content-type': 'text/plain' },
      payload: 'courier,trackingNumber',
    });
    expect(plain.statusCode).toBe(415);
    const missing = await stack.api.app.inject({
      url: '/v1/admin/imports/imp_none',
      headers: stack.api.admin(),
    });
    expect(missing.statusCode).toBe(404);
  });
});
