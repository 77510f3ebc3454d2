/**
 * What ops read in the Temporal UI: an order and its parcel run end to end (real server,
 * worker, Postgres and both simulators), then their histories are read the way the UI reads
 * them — activity and timer summaries, the parcel's static summary, current details.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { orderShipmentId, shipmentWorkflowId } from '../../src/workflows/contract';
import { OrderIdKey, ShipmentStatusKey } from '../../src/workflows/search-attributes';
import { duration, money, utcTime } from '../../src/workflows/summaries';
import { openedHistory } from '../support/histories';
import { uniqueId } from '../support/temporal';
import { startOrder } from '../support/orders';
import { useStack } from '../support/stack';

jest.setTimeout(90_000);

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

function summary(event: HistoryEvent): string | null {
  const payload = event.userMetadata?.summary;
  return payload ? defaultPayloadConverter.fromPayload<string>(payload) : null;
}

/** Summaries of the events the UI lists, by kind. */
async function summaries(
  handle: WorkflowHandle,
): Promise<{ activities: string[]; timers: string[]; children: string[] }> {
  // Read through the codec, as the UI reads it through the codec server: summaries are sealed too.
  const { events } = await openedHistory(handle);
  const of = (pick: (e: HistoryEvent) => unknown) =>
    (events ?? []).filter(pick).map((e) => summary(e) ?? '(none)');
  return {
    // Local activities (the saga's own database writes) are recorded as markers.
    activities: of(
      (e) =>
        e.activityTaskScheduledEventAttributes ||
        e.markerRecordedEventAttributes?.markerName === 'core_local_activity',
    ),
    timers: of((e) => e.timerStartedEventAttributes),
    children: of((e) => e.startChildWorkflowExecutionInitiatedEventAttributes),
  };
}

async function currentDetails(handle: WorkflowHandle): Promise<string> {
  const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return metadata.currentDetails ?? '';
}

describe('workflow histories read as a story', () => {
  const stack = useStack();

  /** A new kettle SKU with `onHand` in stock, for one test's order. */
  async function kettlesInStock(onHand: number): Promise<string> {
    const sku = uniqueId('KETTLE');
    await stack.database.db
      .insertInto('inventory_items')
      .values({ sku, name: 'Kettle', on_hand: onHand })
      .execute();
    return sku;
  }

  it('formats durations, times and money the way the summaries print them', () => {
    expect([
      duration(45_000),
      duration(30 * 60_000),
      duration(2 * 3_600_000),
      duration(150 * 60_000),
    ]).toEqual(['45 s', '30 min', '2 h', '2 h 30 min']);
    expect(duration(3 * 86_400_000 + 4 * 3_600_000)).toBe('3 d 4 h');
    expect(utcTime(Date.UTC(2026, 10, 24, 14, 5))).toBe('2026-11-24 14:05 UTC');
    expect([money(9_980, 'myr'), money(1_500, 'JPY')]).toEqual(['MYR 99.80', 'JPY 1500']);
  });

  it('names every step of an order and its parcel, and says where each stands', async () => {
    const sku = await kettlesInStock(5);
    const {
      orderId,
      orderNumber,
      handle: order,
    } = await startOrder(stack, { sku, quantity: 2, scenario: 'delivered', staticSummary: true });
    expect((await order.result()).status).toBe('DELIVERED');

    expect(await order.describe().then((d) => d.staticSummary())).toBe(
      `Order ${orderNumber} · 2 items · MYR 99.80 · Simulator`,
    );
    const orderStory = await summaries(order);
    expect(orderStory.activities).toEqual(
      expect.arrayContaining([
        `reserve stock: 2× ${sku}`,
        'authorise MYR 99.80',
        'record the authorisation',
        `book parcel ${orderShipmentId(orderId, 1)} with Simulator`,
        'order → CONFIRMED',
        'notify the customer: confirmed',
        'capture MYR 99.80 at the first pickup',
        'order → DELIVERED',
        'notify the customer: delivered',
      ]),
    );
    expect(orderStory.activities).not.toContain('(none)');
    const parcel = stack.worker.client.workflow.getHandle(shipmentWorkflowId(orderShipmentId(orderId, 1)));
    const row = await stack.database.db
      .selectFrom('shipments')
      .select('tracking_number')
      .where('id', '=', orderShipmentId(orderId, 1))
      .executeTakeFirstOrThrow();
    const parcelSummary = `Parcel 1 of 1 of order ${orderNumber} · Simulator ${row.tracking_number}`;
    expect(orderStory.children).toEqual([parcelSummary]);
    // On the run the order started (SDK 1.24's continue-as-new cannot carry a static summary;
    // later runs say the same in their current details).
    const childStarted = (await order.fetchHistory()).events!.find(
      (e) => e.childWorkflowExecutionStartedEventAttributes,
    )!.childWorkflowExecutionStartedEventAttributes!.workflowExecution!;
    const firstRun = stack.worker.client.workflow.getHandle(childStarted.workflowId!, childStarted.runId!);
    expect(await firstRun.describe().then((d) => d.staticSummary())).toBe(parcelSummary);
    expect(await currentDetails(order)).toBe(
      `Order ${orderNumber} · DELIVERED · p1 DELIVERED · MYR 99.80 captured`,
    );

    const parcelStory = await summaries(parcel);
    const polls = parcelStory.activities.filter((s) => s === `poll Simulator ${row.tracking_number}`);
    expect(polls.length).toBeGreaterThanOrEqual(1);
    expect(parcelStory.activities).toEqual(
      expect.arrayContaining([expect.stringMatching(/^record DELIVERED/)]),
    );
    expect(parcelStory.activities).not.toContain('(none)');
    expect(parcelStory.timers.length).toBeGreaterThan(0);
    for (const timer of parcelStory.timers) expect(timer).toMatch(/^[A-Z_]+: next poll in \d+ (ms|s)$/);
    expect(await currentDetails(parcel)).toMatch(
      new RegExp(`^Simulator ${row.tracking_number} · [A-Z_]+ → DELIVERED · tracking finished · \\d+ polls$`),
    );
  });

  it('indexes a parcel from its start: its workflow upserts only status changes, not what the order set', async () => {
    const sku = await kettlesInStock(1);
    const { orderId, handle: order } = await startOrder(stack, { sku, quantity: 1, scenario: 'delivered' });
    expect((await order.result()).status).toBe('DELIVERED');
    const indexed = (fields: { indexedFields?: Record<string, unknown> | null } | null | undefined) =>
      Object.keys(fields?.indexedFields ?? {}).sort();

    // startOrder starts the order without attributes (as an import or a test may): its first
    // task adds them.
    const orderEvents = (await order.fetchHistory()).events ?? [];
    const orderUpserts = orderEvents.flatMap((e) => {
      const attributes = e.upsertWorkflowSearchAttributesEventAttributes;
      return attributes ? [indexed(attributes.searchAttributes)] : [];
    });
    expect(orderUpserts[0]).toEqual(expect.arrayContaining(['OrderId', 'OrderStatus']));

    const parcel = stack.worker.client.workflow.getHandle(shipmentWorkflowId(orderShipmentId(orderId, 1)));
    const parcelEvents = (await parcel.fetchHistory()).events ?? [];
    const started = parcelEvents[0]!.workflowExecutionStartedEventAttributes!;
    expect(indexed(started.searchAttributes)).toEqual([
      'Courier',
      'OrderId',
      'ShipmentStatus',
      'TrackingNumber',
    ]);
    const parcelUpserts = parcelEvents.flatMap((e) => {
      const attributes = e.upsertWorkflowSearchAttributesEventAttributes;
      return attributes ? [indexed(attributes.searchAttributes)] : [];
    });
    // One per status change the polls saw (at least the delivery), each of the status alone.
    expect(parcelUpserts.length).toBeGreaterThanOrEqual(1);
    for (const upsert of parcelUpserts) expect(upsert).toEqual(['ShipmentStatus']);
    const attributes = (await parcel.describe()).typedSearchAttributes;
    expect(attributes.get(ShipmentStatusKey)).toBe('DELIVERED');
    expect(attributes.get(OrderIdKey)).toBe(orderId);
  });
});
