/**
 * The import workflow end to end: real Temporal dev server, real worker and activities, real
 * Postgres, shipment workflows polling the courier simulator over HTTP.
 */
import { insertImport, type ImportLineInput } from '../../src/read-model/imports';
import { importWorkflowId, type importWorkflow } from '../../src/workflows/import';
import { shipmentWorkflowId } from '../../src/workflows/contract';
import { recordHistory } from '../support/histories';
import { stillPolicy, uniqueId } from '../support/temporal';
import { useStack } from '../support/stack';

jest.setTimeout(90_000);

describe('import workflow', () => {
  const stack = useStack({ payments: false, worker: { dailyBudget: 1_000_000 } });

  it('walks the lines in batches, records one result per line and starts tracking the new parcels', async () => {
    const number = () =>
      stack.couriers.backend.register({ scenario: 'never_picked_up', format: 'native' }).trackingNumber;
    const [a, b] = [number(), number()];
    const line = (courier: string | null, trackingNumber: string | null): ImportLineInput => ({
      courier,
      trackingNumber,
      orderReference: null,
      email: null,
      postcode: null,
    });
    const importId = uniqueId('imp');
    await insertImport(stack.database.db, {
      id: importId,
      source: 'json',
      createdBy: 'admin:test',
      lines: [
        line('simulator', a),
        line('simulator', b),
        line('simulator', a),
        line('bluedart', 'x'),
        line(null, b),
      ],
    });
    const handle = stack.started(
      await stack.worker.client.workflow.start<typeof importWorkflow>('importWorkflow', {
        workflowId: importWorkflowId(importId),
        taskQueue: stack.worker.taskQueue,
        args: [
          {
            importId,
            total: 5,
            batchSize: 2,
            policy: stillPolicy(),
          },
        ],
      }),
    );
    const summary = await handle.result();
    await recordHistory('import-mixed', handle);
    for (const n of [a, b])
      stack.started(stack.worker.client.workflow.getHandle(shipmentWorkflowId(`simulator-${n}`)));

    expect(summary).toEqual({ importId, started: 2, alreadyTracked: 1, rejected: 2 });
    const lines = await stack.database.db
      .selectFrom('parcel_import_lines')
      .select(['line_no', 'result', 'shipment_id'])
      .where('import_id', '=', importId)
      .orderBy('line_no')
      .execute();
    expect(lines.map((l) => l.result)).toEqual([
      'STARTED',
      'STARTED',
      'ALREADY_TRACKED',
      'REJECTED',
      'REJECTED',
    ]);
    // Three batches (2 + 2 + 1 lines) and the finishing step, each one activity.
    const history = await handle.fetchHistory();
    const activities = history.events!.filter((e) => e.activityTaskScheduledEventAttributes);
    expect(activities.map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name)).toEqual([
      'importLines',
      'importLines',
      'importLines',
      'finishImport',
    ]);
    const status = await stack.database.db
      .selectFrom('parcel_imports')
      .select('status')
      .where('id', '=', importId)
      .executeTakeFirstOrThrow();
    expect(status.status).toBe('DONE');
  });
});
