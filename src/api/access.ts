/**
 * What each staff role may do: the least-privilege matrix every staff route is guarded by
 * (src/api/auth.ts turns a permission into a route hook) and docs/api.md documents.
 *
 * - support answers customers: reads any order and its tracking (and finds orders by
 *   number, e-mail, tracking number), reads the shipments queue, asks one shipment for a
 *   fresh poll, reads stock levels and low-stock alerts;
 * - ops works the exceptions: support's rights plus cancelling orders, marking parcels
 *   delivered, the NEEDS_ATTENTION queue, bulk refreshes (up to 500 courier calls), and
 *   reading workflow histories decoded through the codec server, the CSV exports, the
 *   stats (courier API spend against the budget: ops spend it with bulk refreshes and can
 *   export the same figures as courier usage, so the two agree), the failed-work list
 *   (retrying a parked step, restarting a parcel's tracking), and runs the catalogue: skus and
 *   prices, stock received and adjusted, low-stock alerts acknowledged;
 * - admin: everything, including the shop's event endpoints (domain events out), importing parcels already in flight and
 *   resetting an order workflow.
 */

export const StaffRole = { ADMIN: 'admin', OPS: 'ops', SUPPORT: 'support' } as const;
export type StaffRole = (typeof StaffRole)[keyof typeof StaffRole];
export const STAFF_ROLES: readonly StaffRole[] = Object.values(StaffRole);

export const Permission = {
  /** Any order, its tracking and its live stream. */
  READ_ORDERS: 'orders:read',
  /** The shipments queue (exceptions, stale, by courier). */
  READ_SHIPMENTS: 'shipments:read',
  /** One shipment's workflow asked to poll now. */
  REFRESH_SHIPMENT: 'shipments:refresh',
  /** Many shipments at once: up to 500 courier calls from the daily budget. */
  REFRESH_SHIPMENTS_BULK: 'shipments:refresh-bulk',
  CANCEL_ORDERS: 'orders:cancel',
  MARK_DELIVERED: 'shipments:mark-delivered',
  READ_ATTENTION: 'attention:read',
  RESOLVE_ATTENTION: 'attention:resolve',
  /** Failed work: workflow runs that stopped, parked orders, parcels whose sync fails. */
  READ_FAILED_WORK: 'failed-work:read',
  /** Retry a parked step, restart tracking of a parcel whose workflow died (audited). */
  RETRY_FAILED_WORK: 'failed-work:retry',
  /** Reset an order workflow to its last sound point (audited, only when safe). */
  RESET_WORKFLOWS: 'workflows:reset',
  /**
   * Shipments by status and courier API calls against the budget: counts, no personal data,
   * the same figures as the courier-usage export. Ops and admin.
   */
  READ_STATS: 'stats:read',
  /**
   * The codec server: open (and seal) Temporal payloads, which carry customers' personal data
   * (names, addresses, phones in courier answers). Ops read workflow histories; support answers
   * customers from the API's own views and does not need raw histories.
   */
  DECODE_PAYLOADS: 'payloads:decode',
  /** Import parcels already in flight (up to 10,000 new shipment workflows each) and read imports. */
  IMPORT_PARCELS: 'parcels:import',
  /** Orders found by number, customer e-mail, tracking number, status and creation time. */
  SEARCH_ORDERS: 'orders:search',
  /** Stock levels (on hand, reserved, available) and low-stock alerts. */
  READ_STOCK: 'stock:read',
  /** Stock received and adjusted (audited), low-stock alerts acknowledged. */
  WRITE_STOCK: 'stock:write',
  /** Skus created and changed: name, warehouse, price, low-stock threshold (audited). */
  WRITE_CATALOGUE: 'catalogue:write',
  /**
   * The shop's event endpoints: register, change, disable / enable, rotate secrets, read
   * deliveries and attempts, resend. Admin only: an endpoint receives every order's events.
   */
  MANAGE_EVENT_ENDPOINTS: 'events:manage',
  /**
   * The CSV exports (deliveries, exceptions, courier usage, orders with their money): whole
   * date ranges of customers' names and e-mails at once, so not support's, who answer one
   * customer at a time.
   */
  READ_EXPORTS: 'exports:read',
} as const;
export type Permission = (typeof Permission)[keyof typeof Permission];

const SUPPORT: readonly Permission[] = [
  Permission.READ_ORDERS,
  Permission.READ_SHIPMENTS,
  Permission.REFRESH_SHIPMENT,
  Permission.SEARCH_ORDERS,
  Permission.READ_STOCK,
];
const OPS: readonly Permission[] = [
  ...SUPPORT,
  Permission.REFRESH_SHIPMENTS_BULK,
  Permission.CANCEL_ORDERS,
  Permission.MARK_DELIVERED,
  Permission.READ_ATTENTION,
  Permission.RESOLVE_ATTENTION,
  Permission.DECODE_PAYLOADS,
  Permission.READ_FAILED_WORK,
  Permission.RETRY_FAILED_WORK,
  Permission.WRITE_STOCK,
  Permission.WRITE_CATALOGUE,
  Permission.READ_EXPORTS,
  Permission.READ_STATS,
];

export const ROLE_PERMISSIONS: Readonly<Record<StaffRole, ReadonlySet<Permission>>> = {
  [StaffRole.SUPPORT]: new Set(SUPPORT),
  [StaffRole.OPS]: new Set(OPS),
  [StaffRole.ADMIN]: new Set(Object.values(Permission)),
};

export function isStaffRole(value: unknown): value is StaffRole {
  return (STAFF_ROLES as readonly unknown[]).includes(value);
}

export function can(role: StaffRole, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].has(permission);
}

/** The roles holding a permission, least privileged first: for 403 messages and the docs. */
export function rolesWith(permission: Permission): StaffRole[] {
  return [StaffRole.SUPPORT, StaffRole.OPS, StaffRole.ADMIN].filter((role) => can(role, permission));
}
