/**
 * The CSV exports' HTTP contract: the date range every export takes, and what each one
 * lists (its rows and columns, for the OpenAPI document and docs/exports.md).
 */
import { Type } from 'typebox';
import type { ExportKind } from '../../read-model/exports';

/** The longest range one export covers, in days (both ends included): a quarter. */
export const MAX_EXPORT_DAYS = 92;

const Day = (description: string) =>
  Type.String({ format: 'date', maxLength: 10, description: `${description} (UTC day, YYYY-MM-DD)` });

export const ExportRangeQuery = Type.Object(
  {
    from: Day('First day, included'),
    to: Day(`Last day, included; at most ${MAX_EXPORT_DAYS} days from the first`),
  },
  { additionalProperties: false },
);

export const CsvBody = {
  description:
    'CSV (RFC 4180, UTF-8, a header row first), streamed as the rows are read. Text cells starting with =, +, -, @, a tab or a carriage return start with a single quote, so no spreadsheet runs them as formulas. Times are ISO 8601 UTC; money is in minor units beside its currency; empty cells are nulls.',
  content: { 'text/csv': { schema: Type.String({ maxLength: 10_000_000_000 }) } },
};

export const EXPORTS: Readonly<Record<ExportKind, { operationId: string; summary: string; rows: string }>> = {
  deliveries: {
    operationId: 'exportDeliveries',
    summary:
      'Deliveries as CSV: every parcel booked in the range, its status and time from pickup to delivery',
    rows: 'One row per parcel created in the range, oldest first: `day` (UTC day booked), courier, status and sub-status now, recipient and destination, pickup, delivery and ETA times, `pickup_to_delivery_seconds` (empty until delivered or without a pickup scan) and `late` (delivered after its ETA).',
  },
  exceptions: {
    operationId: 'exportExceptions',
    summary: 'Exceptions as CSV: every exception scan in the range with what the courier said',
    rows: "One row per exception scan in the range, oldest first: its time, the parcel (courier, tracking number, order number, status now), the scan's sub-status, raw code and text, and where it happened.",
  },
  'courier-usage': {
    operationId: 'exportCourierUsage',
    summary: 'Courier usage as CSV: API calls per courier and day against the daily budget',
    rows: "One row per courier and UTC day with calls: calls, failures, the budget (the one the day's report recorded, else WAYBILL_COURIER_DAILY_BUDGET now), remaining calls, `used_percent` and `over_budget`.",
  },
  orders: {
    operationId: 'exportOrders',
    summary: 'Orders as CSV with their money: total, authorised, captured and refunded',
    rows: "One row per order placed in the range, oldest first: number, status, customer, destination, courier, currency, `total_minor`, and its payment's status, `authorised_minor`, `captured_minor` and `refunded_minor` (minor units; 0 without a payment).",
  },
};
