/**
 * Waybill's own metrics. They go through the Temporal SDK's metric meter (activity context
 * or workflow), so the worker's one Prometheus endpoint serves them next to Temporal's own
 * `temporal_*` metrics, with the SDK's labels (namespace, task_queue, activity_type or
 * workflow_type) added. Pure code: workflows import it too. The README lists what each means.
 */
import type { MetricMeter, MetricTags } from '@temporalio/common';

interface MetricDefinition {
  readonly name: string;
  readonly unit: string;
  readonly description: string;
}

export const Metrics = {
  courierCalls: {
    name: 'waybill_courier_calls',
    unit: '',
    description:
      'Calls to a courier API, by courier and outcome (found, not_found, unavailable, rejected, error)',
  },
  courierCallDuration: {
    name: 'waybill_courier_call_duration',
    unit: 'ms',
    description: 'Time one courier API call took, by courier',
  },
  courierUnknownScans: {
    name: 'waybill_courier_unknown_scans',
    unit: '',
    description:
      "Scans in courier tracking answers that the courier's published format does not cover, by courier and kind: unknown_code (kept with sub-status UNKNOWN and its raw code) or unreadable (skipped). Counted per answer: a scan still in the history counts again at the next poll",
  },
  courierBudgetRefusals: {
    name: 'waybill_courier_budget_refusals',
    unit: '',
    description: "Polls not sent because the courier's daily call budget was used up, by courier",
  },
  courierRequestWaits: {
    name: 'waybill_courier_request_waits',
    unit: '',
    description:
      'Courier requests that waited for their slot, by courier: requests to a courier start at least 1/WAYBILL_COURIER_REQUESTS_PER_SECOND s apart across every worker, so two close together wait (a booking right after its token request, say); counted near the rate of courier calls, the account limit sets the pace',
  },
  courierPollsPutOff: {
    name: 'waybill_courier_polls_put_off',
    unit: '',
    description:
      'Poll attempts put off with no call made, to be retried on a timer, because their courier is not answering (a tracking call of this worker out longer than WAYBILL_COURIER_SLOW_AFTER, and none answered in time since), by courier',
  },
  trackingEventsRecorded: {
    name: 'waybill_tracking_events_recorded',
    unit: '',
    description: 'New tracking events written to the read model (duplicates not counted)',
  },
  shipmentPolls: {
    name: 'waybill_shipment_polls',
    unit: '',
    description:
      'Poll cycles of shipment workflows, by courier and result (ok, not_found, failed, budget_exhausted)',
  },
  shipmentStatusChanges: {
    name: 'waybill_shipment_status_changes',
    unit: '',
    description: 'Shipments moving to a status, by courier and status',
  },
  compensations: {
    name: 'waybill_compensations',
    unit: '',
    description: 'Saga compensations run, by step and by why the saga unwound (failed, cancelled, lost)',
  },
  fleetSilentRuns: {
    name: 'waybill_fleet_silent_runs',
    unit: '',
    description:
      "The shop's own fleet: runs that went silent (no driver report for WAYBILL_FLEET_SILENT_RUN_AFTER with parcels still to deliver), once per silence",
  },
  courierCredentialsRefused: {
    name: 'waybill_courier_credentials_refused',
    unit: '',
    description:
      'Booking and cancel calls a courier refused because of our credentials (401/403), by courier and operation: an incident',
  },
  ordersNeedingAttention: {
    name: 'waybill_orders_needing_attention',
    unit: '',
    description:
      'Saga steps parked for an admin (refused for good by the provider or courier, or out of retries), by step',
  },
  ordersFinished: {
    name: 'waybill_orders_finished',
    unit: '',
    description: 'Orders reaching a final status, by status',
  },
  housekeepingShipments: {
    name: 'waybill_housekeeping_shipments',
    unit: '',
    description:
      'Shipments housekeeping changed, by action (expired, archived, scrubbed) or left alone (expiry_skipped_running)',
  },
  housekeepingOrders: {
    name: 'waybill_housekeeping_orders',
    unit: '',
    description:
      'PENDING orders past the start grace that housekeeping closed as FAILED / NOT_STARTED (failed_not_started) or left alone (skipped: a workflow exists, a request holds its key, or stock or money was touched)',
  },
  housekeepingPruned: {
    name: 'waybill_housekeeping_pruned',
    unit: '',
    description:
      'Rows housekeeping deleted for their age, by kind (idempotencyKeys, webhookEvents, notifications, events)',
  },
  eventDeliveries: {
    name: 'waybill_event_deliveries',
    unit: '',
    description:
      'Domain event delivery attempts, by outcome: delivered, failed (retried later), disabled (the attempt disabled its endpoint: 410 Gone, or the last of its run of failures)',
  },
  eventDeliveryLatency: {
    name: 'waybill_event_delivery_latency',
    unit: 'ms',
    description: 'From a domain event occurring to its delivery at an endpoint (retries included)',
  },
  eventsPending: {
    name: 'waybill_events_pending',
    unit: '',
    description: 'Deliveries of domain events still pending at enabled endpoints',
  },
  eventsOldestPendingAge: {
    name: 'waybill_events_oldest_pending_age',
    unit: 's',
    description: 'Age of the oldest domain event still pending at an enabled endpoint (0 when none)',
  },
  eventEndpointsDisabled: {
    name: 'waybill_event_endpoints_disabled',
    unit: '',
    description: 'Event endpoints disabled (by an admin, or automatically after failures or a 410 Gone)',
  },
  workerEventLoopDelay: {
    name: 'waybill_worker_event_loop_delay',
    unit: 'ms',
    description:
      "How late the worker's main thread ran what was due, over the last 15 s (stat: mean, p99, max). Activations, local activities and their payloads all pass through this thread: a delay here is a delay for every workflow task. Main thread only: the workflow threads that run workflow code are not measured",
  },
} as const satisfies Record<string, MetricDefinition>;

/** Adds `value` (default 1) to a counter. */
export function count(meter: MetricMeter, metric: MetricDefinition, tags: MetricTags, value = 1): void {
  meter.createCounter(metric.name, metric.unit, metric.description).add(value, tags);
}

/** Sets a gauge (whole units). */
export function gauge(
  meter: MetricMeter,
  metric: MetricDefinition,
  value: number,
  tags: MetricTags = {},
): void {
  meter.createGauge(metric.name, 'int', metric.unit, metric.description).set(Math.round(value), tags);
}

/** Records one value on a histogram (whole units). */
export function observe(meter: MetricMeter, metric: MetricDefinition, value: number, tags: MetricTags): void {
  meter.createHistogram(metric.name, 'int', metric.unit, metric.description).record(Math.round(value), tags);
}
