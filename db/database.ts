/**
 * The one Kysely `Database` type for the read model. Nullable columns are `T | null`;
 * columns with a database default are `Generated<T>`. Pass the `Selectable`/`Insertable`
 * aliases below around, not the table interfaces.
 */
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** timestamptz: read as Date, written as Date or ISO string. */
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type GeneratedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** jsonb: written as a JSON string or value, read as parsed JSON. */
type Json<T> = ColumnType<T, T | string, T | string>;

export interface ShippingAddress {
  name: string;
  line1: string;
  line2?: string | null;
  city: string;
  state?: string | null;
  postcode: string;
  country: string;
  phone?: string | null;
}

export interface OrdersTable {
  id: string;
  number: string;
  customer_id: string | null;
  email: string;
  postcode: string | null;
  status: Generated<string>;
  failure_code: string | null;
  failure_message: string | null;
  currency: string;
  /** Minor units (cents). */
  total_amount: number;
  courier: string;
  shipping_address: Json<ShippingAddress>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
  /**
   * The order's shipments as the tracking reads show them, kept by triggers on `shipments`
   * (migration 2026-12-06T23-00-00_order_tracking_view); never written by the code.
   */
  tracking_view: Generated<unknown>;
}

export interface OrderItemsTable {
  order_id: string;
  line_no: number;
  sku: string;
  name: string;
  quantity: number;
  /** Minor units (cents). */
  unit_amount: number;
  shipment_id: string | null;
}

export interface InventoryItemsTable {
  sku: string;
  name: string;
  location: Generated<string>;
  on_hand: number;
  reserved: Generated<number>;
  low_stock_threshold: Generated<number>;
  /** Price per unit in minor units; the API prices orders from it. */
  unit_amount: Generated<number>;
  currency: Generated<string>;
  updated_at: GeneratedTimestamp;
}

export interface InventoryReservationsTable {
  order_id: string;
  sku: string;
  quantity: number;
  status: Generated<'RESERVED' | 'RELEASED' | 'CONSUMED' | 'RESTOCKED'>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export interface PaymentsTable {
  id: string;
  order_id: string;
  idempotency_key: string;
  provider: string;
  provider_ref: string | null;
  status: string;
  currency: string;
  amount_authorised: number;
  amount_captured: Generated<number>;
  amount_refunded: Generated<number>;
  decline_code: string | null;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

/** How many events `shipments.recent_events` keeps (what a tracking read shows). */
export const RECENT_EVENTS_LIMIT = 100;

/**
 * One entry of `shipments.recent_events`; `occurredAt` as the API writes it (`…T03:04:05.123Z`;
 * rows written before 2026-12-06 held Postgres's JSON text, `…+00:00`, and were rewritten by the
 * migration 2026-12-06T10-00-00_recent_events_api_times).
 */
export interface RecentEvent {
  status: string;
  occurredAt: string;
  city: string | null;
  country: string | null;
}

export interface ShipmentsTable {
  id: string;
  order_id: string | null;
  courier: string;
  tracking_number: string;
  status: Generated<string>;
  sub_status: string | null;
  eta: Timestamp | null;
  last_event_at: Timestamp | null;
  last_synced_at: Timestamp | null;
  next_poll_at: Timestamp | null;
  sync_error: string | null;
  sync_failing_since: Timestamp | null;
  consecutive_failures: Generated<number>;
  version: Generated<number>;
  destination_city: string | null;
  destination_country: string | null;
  raw_latest: Json<unknown> | null;
  /** Newest first, at most 100, city level: what tracking reads show (kept by the record activity). */
  recent_events: ColumnType<RecentEvent[], string | undefined, string>;
  picked_up_at: Timestamp | null;
  delivered_at: Timestamp | null;
  archived_at: Timestamp | null;
  /** When the shipment reached a terminal status; archive and scrub ages count from here. */
  finished_at: Timestamp | null;
  /** When housekeeping removed personal data from its raw courier payloads. */
  pii_scrubbed_at: Timestamp | null;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export interface TrackingEventsTable {
  id: Generated<number>;
  shipment_id: string;
  /** Deterministic from courier, code, time and location: the same scan twice is one row. */
  event_key: string;
  status: string;
  sub_status: string | null;
  raw_code: string | null;
  raw_text: string | null;
  occurred_at: Timestamp;
  occurred_at_raw: string | null;
  location_city: string | null;
  location_state: string | null;
  location_country: string | null;
  source: 'poll' | 'push' | 'manual';
  recorded_at: GeneratedTimestamp;
}

export interface CourierApiUsageTable {
  courier: string;
  /** UTC day, 'YYYY-MM-DD'. */
  day: string;
  calls: Generated<number>;
  failures: Generated<number>;
}

/** Per courier, the earliest time its next request may start, across every worker (src/read-model/courier-usage.ts). */
export interface CourierRequestSlotsTable {
  courier: string;
  next_at: Date;
}

/** A courier account's OAuth token pair, shared by every worker (src/read-model/courier-tokens.ts). */
export interface CourierTokensTable {
  courier: string;
  /** The refresh token the operator configured: a new one (re-authorised) replaces the stored pair. */
  configured_refresh_token: string;
  refresh_token: string;
  access_token: string | null;
  refresh_at: Date | null;
  updated_at: Generated<Date>;
}

/** What EasyParcel answered to a booking we submitted (src/read-model/easyparcel-submissions.ts). */
export interface EasyParcelSubmissionsTable {
  /** Our booking reference (the shipment id). */
  reference: string;
  /** Null: the submit went out and no answer was read (its outcome is unknown). */
  shipment_number: string | null;
  awb_number: string | null;
  submitted_at: Generated<Date>;
  answered_at: Date | null;
}

export interface CourierWebhookEventsTable {
  courier: string;
  event_id: string;
  tracking_number: string | null;
  received_at: GeneratedTimestamp;
}

export interface NotificationsTable {
  id: Generated<number>;
  dedupe_key: string;
  order_id: string | null;
  kind: string;
  channel: string;
  recipient: string;
  payload: Json<Record<string, unknown>>;
  status: Generated<'PENDING' | 'SENT' | 'FAILED'>;
  attempts: Generated<number>;
  last_error: string | null;
  created_at: GeneratedTimestamp;
  sent_at: Timestamp | null;
}

export interface AuditLogTable {
  id: Generated<number>;
  actor: string;
  action: string;
  subject_type: string;
  subject_id: string;
  reason: string | null;
  details: Json<Record<string, unknown>>;
  /** Set by activities: the same action recorded twice is one row. */
  dedupe_key: string | null;
  created_at: GeneratedTimestamp;
}

export interface ApiIdempotencyKeysTable {
  scope: string;
  key: string;
  request_hash: string;
  state: 'IN_PROGRESS' | 'DONE';
  response_status: number | null;
  response_body: Json<unknown> | null;
  /** What the request created (the order id), known before the response is. */
  resource_id: string | null;
  /** While IN_PROGRESS: the request holding the key; after this a retry may take over. */
  locked_until: Timestamp | null;
  created_at: GeneratedTimestamp;
}

/** One courier's figures in a daily report. */
export interface DailyCourierFigures {
  courier: string;
  deliveries: number;
  exceptions: number;
  expired: number;
  /** Median of delivered_at − (picked_up_at, else created_at), whole seconds; null without deliveries. */
  medianDeliverySeconds: number | null;
  calls: number;
  failures: number;
  budget: number;
  /** Parcels delivered that day after their ETA. */
  late: number;
}

/** Average seconds a day's delivered parcels spent in one status (from their scans). */
export interface DailyStatusSeconds {
  status: string;
  /** Parcels that had this status at some point. */
  parcels: number;
  averageSeconds: number;
}

/** Parcels with an exception scan that day, by courier and the courier's reason. */
export interface DailyExceptionReason {
  courier: string;
  /** The scan's sub-status, else the courier's raw code, else 'unspecified'. */
  reason: string;
  parcels: number;
}

export interface DailyReportsTable {
  /** UTC day, 'YYYY-MM-DD'. One row per day: a rerun overwrites it. */
  day: string;
  deliveries: number;
  /** Shipments with an EXCEPTION scan that day. */
  exceptions: number;
  /** Shipments that ended EXPIRED that day. */
  expired: number;
  median_delivery_seconds: number | null;
  courier_calls: number;
  courier_failures: number;
  /** Calls allowed per courier that day (WAYBILL_COURIER_DAILY_BUDGET when the report ran). */
  courier_budget: number;
  by_courier: Json<DailyCourierFigures[]>;
  /** Parcels delivered that day after their ETA (those without an ETA are never late). */
  late_deliveries: Generated<number>;
  status_seconds: Json<DailyStatusSeconds[]>;
  exceptions_by_reason: Json<DailyExceptionReason[]>;
  generated_at: GeneratedTimestamp;
}

/** A step of an order's saga parked for an admin (see the order_attention migration). */
export interface OrderAttentionTable {
  order_id: string;
  item_id: string;
  step: string;
  reason: string;
  status: Generated<'OPEN' | 'RETRIED' | 'RESOLVED'>;
  opened_at: GeneratedTimestamp;
  closed_at: Date | null;
  closed_by: string | null;
  resolution: string | null;
  /** How a resolved `capture` was settled: `captured_by_hand` or `not_charged` (null otherwise). */
  settlement: string | null;
}

export interface RefreshQuotaTable {
  /** `customer:<id>`. */
  subject: string;
  /** The current window began here; the first refresh after it ends starts a new one. */
  window_started_at: GeneratedTimestamp;
  /** Live refreshes taken in the current window. */
  used: number;
}

/** A list of parcels in flight an admin sent to be tracked (POST /v1/admin/imports). */
export interface ParcelImportsTable {
  id: string;
  /** RUNNING until every line has a result, then DONE. */
  status: Generated<string>;
  total: number;
  /** 'json' or 'csv'. */
  source: string;
  created_by: string;
  created_at: GeneratedTimestamp;
  finished_at: Timestamp | null;
}

/** One line of an import: what was sent, and its result once the import workflow got to it. */
export interface ParcelImportLinesTable {
  import_id: string;
  /** 1-based, in the order sent (CSV: data rows, the header not counted). */
  line_no: number;
  courier: string | null;
  tracking_number: string | null;
  order_reference: string | null;
  email: string | null;
  postcode: string | null;
  result: 'STARTED' | 'ALREADY_TRACKED' | 'REJECTED' | null;
  reason: string | null;
  shipment_id: string | null;
  first_poll_at: Timestamp | null;
  processed_at: Timestamp | null;
}

/** Per courier: the next free first-poll position for imported parcels. */
export interface ImportPollCursorsTable {
  courier: string;
  next_at: Timestamp;
}

/** A low-stock alert (see the stock_alerts migration): one per sku per UTC day. */
export interface StockAlertsTable {
  id: Generated<number>;
  sku: string;
  /** `low-stock:<sku>:<YYYY-MM-DD UTC>`. */
  dedupe_key: string;
  /** Units available (`on_hand - reserved`) when it was raised. */
  available: number;
  threshold: number;
  raised_at: GeneratedTimestamp;
  acknowledged_at: Timestamp | null;
  acknowledged_by: string | null;
  note: string | null;
}

/** A shop's subscribed webhook endpoint for domain events (docs/events.md). */
export interface EventEndpointsTable {
  id: string;
  url: string;
  description: string | null;
  /** The event types it receives (src/domain/events.ts). */
  event_types: string[];
  /** HMAC-SHA256 signing secret; shown to the admin once, when created or rotated. */
  secret: string;
  status: Generated<'ENABLED' | 'DISABLED'>;
  disabled_reason: string | null;
  consecutive_failures: Generated<number>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

/** The last sequence number of an ordering stream (an order, or a parcel without one). */
export interface EventStreamsTable {
  stream: string;
  last_seq: number;
}

/** How many times a subject entered a status (`<subject>:<status>`): the count in its events' keys. */
export interface EventKeyEntriesTable {
  key_prefix: string;
  entries: number;
}

/** One domain event, written in the transaction of the change it reports. */
export interface EventOutboxTable {
  id: Generated<number>;
  event_key: string;
  type: string;
  stream: string;
  seq: number;
  order_id: string | null;
  shipment_id: string | null;
  data: Json<Record<string, unknown>>;
  occurred_at: GeneratedTimestamp;
}

/** One event owed to one endpoint: PENDING until the endpoint answered 2xx. */
export interface EventDeliveriesTable {
  endpoint_id: string;
  event_id: number;
  stream: string;
  seq: number;
  status: Generated<'PENDING' | 'DELIVERED'>;
  attempts: Generated<number>;
  next_attempt_at: GeneratedTimestamp;
  last_error: string | null;
  delivered_at: Timestamp | null;
}

export interface EventDeliveryAttemptsTable {
  id: Generated<number>;
  endpoint_id: string;
  event_id: number;
  attempted_at: GeneratedTimestamp;
  status_code: number | null;
  ok: boolean;
  error: string | null;
  duration_ms: number;
}

export interface FleetVehiclesTable {
  id: string;
  registration: string;
  label: string | null;
  created_at: GeneratedTimestamp;
}

export interface FleetDriversTable {
  id: string;
  name: string;
  phone: string | null;
  /** SHA-256 of the driver's live token; null when none is live (never issued, or revoked). */
  token_hash: Buffer | null;
  token_issued_at: Timestamp | null;
  created_at: GeneratedTimestamp;
}

export interface FleetRunsTable {
  id: string;
  driver_id: string;
  vehicle_id: string;
  /** YYYY-MM-DD. */
  run_date: ColumnType<string, string, string>;
  /** OPEN or CLOSED. */
  status: Generated<string>;
  created_by: string;
  created_at: GeneratedTimestamp;
  closed_at: Timestamp | null;
  last_report_at: Timestamp | null;
  silent_since: Timestamp | null;
  silent_alarms: Generated<number>;
}

export interface FleetParcelsTable {
  shipment_id: string;
  tracking_number: string;
  /** Null: in the dispatch queue. */
  run_id: string | null;
  /** A ShipmentStatus: INFO_RECEIVED until the driver picks it up. */
  status: Generated<string>;
  recipient: Json<{ name: string; line1: string; city: string; postcode: string; phone: string | null }>;
  description: string;
  proof_ref: string | null;
  last_reason: string | null;
  booked_at: GeneratedTimestamp;
  assigned_at: Timestamp | null;
  picked_up_at: Timestamp | null;
  cancelled_at: Timestamp | null;
  updated_at: GeneratedTimestamp;
}

export interface FleetReportsTable {
  driver_id: string;
  report_id: string;
  run_id: string;
  shipment_id: string;
  kind: string;
  occurred_at: Timestamp;
  proof_ref: string | null;
  reason: string | null;
  note: string | null;
  received_at: GeneratedTimestamp;
}

export interface Database {
  orders: OrdersTable;
  order_attention: OrderAttentionTable;
  order_items: OrderItemsTable;
  inventory_items: InventoryItemsTable;
  inventory_reservations: InventoryReservationsTable;
  payments: PaymentsTable;
  shipments: ShipmentsTable;
  tracking_events: TrackingEventsTable;
  courier_api_usage: CourierApiUsageTable;
  courier_request_slots: CourierRequestSlotsTable;
  courier_tokens: CourierTokensTable;
  easyparcel_submissions: EasyParcelSubmissionsTable;
  courier_webhook_events: CourierWebhookEventsTable;
  notifications: NotificationsTable;
  audit_log: AuditLogTable;
  api_idempotency_keys: ApiIdempotencyKeysTable;
  daily_reports: DailyReportsTable;
  refresh_quota: RefreshQuotaTable;
  parcel_imports: ParcelImportsTable;
  parcel_import_lines: ParcelImportLinesTable;
  import_poll_cursors: ImportPollCursorsTable;
  stock_alerts: StockAlertsTable;
  event_endpoints: EventEndpointsTable;
  event_streams: EventStreamsTable;
  event_key_entries: EventKeyEntriesTable;
  event_outbox: EventOutboxTable;
  event_deliveries: EventDeliveriesTable;
  event_delivery_attempts: EventDeliveryAttemptsTable;
  fleet_vehicles: FleetVehiclesTable;
  fleet_drivers: FleetDriversTable;
  fleet_runs: FleetRunsTable;
  fleet_parcels: FleetParcelsTable;
  fleet_reports: FleetReportsTable;
}

/** An order's own fields (its tracking view is the tracking reads' alone). */
export type Order = Omit<Selectable<OrdersTable>, 'tracking_view'>;
export type NewOrder = Insertable<OrdersTable>;
export type OrderItem = Selectable<OrderItemsTable>;
export type OrderAttention = Selectable<OrderAttentionTable>;
export type NewOrderItem = Insertable<OrderItemsTable>;
export type InventoryItem = Selectable<InventoryItemsTable>;
export type StockAlert = Selectable<StockAlertsTable>;
export type Payment = Selectable<PaymentsTable>;
export type Shipment = Selectable<ShipmentsTable>;
export type NewShipment = Insertable<ShipmentsTable>;
export type ShipmentUpdate = Updateable<ShipmentsTable>;
export type TrackingEvent = Selectable<TrackingEventsTable>;
export type NewTrackingEvent = Insertable<TrackingEventsTable>;
export type Notification = Selectable<NotificationsTable>;
export type AuditEntry = Selectable<AuditLogTable>;
export type DailyReport = Selectable<DailyReportsTable>;
export type NewDailyReport = Insertable<DailyReportsTable>;
export type EventEndpoint = Selectable<EventEndpointsTable>;
export type OutboxEvent = Selectable<EventOutboxTable>;
