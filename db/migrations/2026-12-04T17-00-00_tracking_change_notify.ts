/**
 * Live tracking streams learn of changes by LISTEN/NOTIFY instead of polling: every write
 * to the read model that a stream shows (a tracking event recorded, a shipment's status,
 * sub-status, ETA, courier error or version changed, an order's status changed) sends
 * `NOTIFY waybill_order_changed, '<order id>'` when its transaction commits. Triggers, not
 * calls in the write path, so every writer is covered: activities, housekeeping, admin
 * routes, a person with psql. Postgres folds identical notifications of one transaction
 * into one, so a poll that records ten scans wakes a stream once.
 * Frozen: add a new migration for later changes.
 */
import { sql, type Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function waybill_notify_order_changed() returns trigger language plpgsql as $$
    declare
      changed_order text;
    begin
      if TG_TABLE_NAME = 'orders' then
        changed_order := NEW.id;
      elsif TG_TABLE_NAME = 'shipments' then
        changed_order := NEW.order_id;
      else
        select order_id into changed_order from shipments where id = NEW.shipment_id;
      end if;
      if changed_order is not null then
        perform pg_notify('waybill_order_changed', changed_order);
      end if;
      return null;
    end
    $$`.execute(db);

  await sql`
    create trigger tracking_events_notify after insert on tracking_events
    for each row execute function waybill_notify_order_changed()`.execute(db);
  await sql`
    create trigger shipments_insert_notify after insert on shipments
    for each row execute function waybill_notify_order_changed()`.execute(db);
  // Not on every write: a poll that finds nothing new still updates last_synced_at and
  // next_poll_at, which no stream shows.
  await sql`
    create trigger shipments_update_notify after update on shipments
    for each row when (
      old.status is distinct from new.status
      or old.sub_status is distinct from new.sub_status
      or old.eta is distinct from new.eta
      or old.sync_error is distinct from new.sync_error
      or old.version is distinct from new.version
      or old.order_id is distinct from new.order_id
    ) execute function waybill_notify_order_changed()`.execute(db);
  await sql`
    create trigger orders_update_notify after update on orders
    for each row when (old.status is distinct from new.status)
    execute function waybill_notify_order_changed()`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger orders_update_notify on orders`.execute(db);
  await sql`drop trigger shipments_update_notify on shipments`.execute(db);
  await sql`drop trigger shipments_insert_notify on shipments`.execute(db);
  await sql`drop trigger tracking_events_notify on tracking_events`.execute(db);
  await sql`drop function waybill_notify_order_changed()`.execute(db);
}
