/**
 * orders.tracking_view: the order's shipments as the tracking reads show them (a JSON array,
 * by shipment id, each shipment as src/read-model/order-tracking.ts's `shipmentJson` builds
 * it), kept on the order's row so the customer's read and the guest lookup are one index
 * lookup of one row, as the guest read by tracking number already is. Before, each read joined
 * the order to its shipments and aggregated them: about a third more of Postgres's time than a
 * one-row read (docs/benchmarks.md#read-api).
 *
 * Kept by triggers, not by the writers, so every writer is covered (activities, housekeeping,
 * admin routes, a person with psql). They are deferred to commit and lock the order's row
 * before they read its shipments: two transactions writing two parcels of one order each see
 * the other's committed parcel, so neither writes a view without it, and the lock is taken last
 * (after the transaction's own row locks), which keeps deadlocks out of the usual writes. The
 * row is rewritten only when the view changed. A poll that finds nothing new still moves
 * `last_synced_at` and `next_poll_at`, which the view shows (how fresh it is), so each poll
 * rewrites its order's row once.
 * Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('orders')
    .addColumn('tracking_view', 'json', (c) => c.notNull().defaultTo(sql`'[]'::json`))
    .execute();

  // The view of one order's shipments; times as epoch ms (truncated, as a JS Date keeps them).
  await sql`
    create function waybill_order_tracking_view(of_order text) returns json
    language sql stable as $$
      select coalesce(json_agg(json_build_object(
        'id', s.id, 'courier', s.courier, 'trackingNumber', s.tracking_number, 'status', s.status,
        'eta', floor(extract(epoch from s.eta) * 1000),
        'lastSyncedAt', floor(extract(epoch from s.last_synced_at) * 1000),
        'syncError', s.sync_error,
        'nextPollAt', floor(extract(epoch from s.next_poll_at) * 1000),
        'syncFailingSince', floor(extract(epoch from s.sync_failing_since) * 1000),
        'createdAt', floor(extract(epoch from s.created_at) * 1000),
        'events', s.recent_events) order by s.id), '[]'::json)
      from shipments s where s.order_id = $1
    $$`.execute(db);

  await sql`
    create function waybill_refresh_order_tracking_view(changed_order text) returns void
    language plpgsql as $$
    declare
      fresh json;
    begin
      if changed_order is null then
        return;
      end if;
      -- Locked first; the next statement's snapshot then holds every committed parcel of it.
      perform 1 from orders where id = changed_order for no key update;
      fresh := waybill_order_tracking_view(changed_order);
      update orders set tracking_view = fresh
      where id = changed_order and tracking_view::text is distinct from fresh::text;
    end
    $$`.execute(db);

  await sql`
    create function waybill_shipment_changed_order_view() returns trigger language plpgsql as $$
    begin
      if TG_OP <> 'INSERT' then
        perform waybill_refresh_order_tracking_view(OLD.order_id);
      end if;
      if TG_OP <> 'DELETE' and (TG_OP = 'INSERT' or NEW.order_id is distinct from OLD.order_id) then
        perform waybill_refresh_order_tracking_view(NEW.order_id);
      end if;
      return null;
    end
    $$`.execute(db);

  await sql`
    create constraint trigger shipments_order_view_insert_delete after insert or delete on shipments
    deferrable initially deferred
    for each row execute function waybill_shipment_changed_order_view()`.execute(db);
  // Only when a column the view shows (or the parcel's order) changed.
  await sql`
    create constraint trigger shipments_order_view_update after update on shipments
    deferrable initially deferred
    for each row when (
      old.order_id is distinct from new.order_id
      or old.courier is distinct from new.courier
      or old.tracking_number is distinct from new.tracking_number
      or old.status is distinct from new.status
      or old.eta is distinct from new.eta
      or old.last_synced_at is distinct from new.last_synced_at
      or old.sync_error is distinct from new.sync_error
      or old.next_poll_at is distinct from new.next_poll_at
      or old.sync_failing_since is distinct from new.sync_failing_since
      or old.created_at is distinct from new.created_at
      or old.recent_events is distinct from new.recent_events
    ) execute function waybill_shipment_changed_order_view()`.execute(db);

  await sql`
    update orders o set tracking_view = waybill_order_tracking_view(o.id)
    where exists (select 1 from shipments s where s.order_id = o.id)`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger shipments_order_view_update on shipments`.execute(db);
  await sql`drop trigger shipments_order_view_insert_delete on shipments`.execute(db);
  await sql`drop function waybill_shipment_changed_order_view()`.execute(db);
  await sql`drop function waybill_refresh_order_tracking_view(text)`.execute(db);
  await sql`drop function waybill_order_tracking_view(text)`.execute(db);
  await db.schema.alterTable('orders').dropColumn('tracking_view').execute();
}
