/**
 * Every migration, by its frozen name. Listed statically (not read from the folder) so the
 * same set runs under tsx, ts-jest/swc and the compiled dist/ build.
 */
import type { Migration } from 'kysely';
import * as initialReadModel from './2026-11-23T09-00-00_initial_read_model';
import * as auditLogDedupeKey from './2026-11-23T11-00-00_audit_log_dedupe_key';
import * as apiOrders from './2026-11-23T13-00-00_api_orders';
import * as opsReports from './2026-11-23T14-00-00_ops_reports';
import * as shipmentRecentEvents from './2026-11-23T15-00-00_shipment_recent_events';
import * as orderAttention from './2026-12-04T10-00-00_order_attention';
import * as refreshQuota from './2026-12-04T11-00-00_refresh_quota';
import * as pendingOrdersIndex from './2026-12-04T11-10-00_pending_orders_index';
import * as trackingChangeNotify from './2026-12-04T17-00-00_tracking_change_notify';
import * as pruneIndexes from './2026-12-04T17-10-00_prune_indexes';
import * as stockAlertsOrderSearch from './2026-12-04T20-20-00_stock_alerts_order_search';
import * as exportsAndReportFigures from './2026-12-04T20-30-00_exports_and_report_figures';
import * as domainEvents from './2026-12-04T20-50-00_domain_events';
import * as parcelImports from './2026-12-04T21-00-00_parcel_imports';
import * as fleet from './2026-12-05T01-00-00_fleet';
import * as eventPruning from './2026-12-05T02-00-00_event_pruning';
import * as courierTokens from './2026-12-05T03-10-00_courier_tokens';
import * as easyParcelSubmissions from './2026-12-05T06-00-00_easyparcel_submissions';
import * as attentionSettlement from './2026-12-06T09-00-00_attention_settlement';
import * as recentEventsApiTimes from './2026-12-06T10-00-00_recent_events_api_times';
import * as courierRequestSeconds from './2026-12-06T17-00-00_courier_request_seconds';
import * as courierRequestSlots from './2026-12-06T19-00-00_courier_request_slots';
import * as orderTrackingView from './2026-12-06T23-00-00_order_tracking_view';
import * as trackingEventsOneRowPerScan from './2026-12-05T03-00-00_tracking_events_one_row_per_scan';

export const migrations: Record<string, Migration> = {
  '2026-11-23T09-00-00_initial_read_model': initialReadModel,
  '2026-11-23T11-00-00_audit_log_dedupe_key': auditLogDedupeKey,
  '2026-11-23T13-00-00_api_orders': apiOrders,
  '2026-11-23T14-00-00_ops_reports': opsReports,
  '2026-11-23T15-00-00_shipment_recent_events': shipmentRecentEvents,
  '2026-12-04T10-00-00_order_attention': orderAttention,
  '2026-12-04T11-00-00_refresh_quota': refreshQuota,
  '2026-12-04T11-10-00_pending_orders_index': pendingOrdersIndex,
  '2026-12-04T17-00-00_tracking_change_notify': trackingChangeNotify,
  '2026-12-04T17-10-00_prune_indexes': pruneIndexes,
  '2026-12-04T20-20-00_stock_alerts_order_search': stockAlertsOrderSearch,
  '2026-12-04T20-30-00_exports_and_report_figures': exportsAndReportFigures,
  '2026-12-04T20-50-00_domain_events': domainEvents,
  '2026-12-04T21-00-00_parcel_imports': parcelImports,
  '2026-12-05T01-00-00_fleet': fleet,
  '2026-12-05T02-00-00_event_pruning': eventPruning,
  '2026-12-05T03-00-00_tracking_events_one_row_per_scan': trackingEventsOneRowPerScan,
  '2026-12-05T03-10-00_courier_tokens': courierTokens,
  '2026-12-05T06-00-00_easyparcel_submissions': easyParcelSubmissions,
  '2026-12-06T09-00-00_attention_settlement': attentionSettlement,
  '2026-12-06T10-00-00_recent_events_api_times': recentEventsApiTimes,
  '2026-12-06T17-00-00_courier_request_seconds': courierRequestSeconds,
  '2026-12-06T19-00-00_courier_request_slots': courierRequestSlots,
  '2026-12-06T23-00-00_order_tracking_view': orderTrackingView,
};
