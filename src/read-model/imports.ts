/**
 * SQL of the parcel imports (`parcel_imports`, `parcel_import_lines`, with the `shipments`
 * they start and the couriers' `import_poll_cursors`): the API stores a list and reads its
 * progress, the import activities decide the lines' results and write them here.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../db/database';
import { ago } from './time';

export const ImportLineResult = {
  STARTED: 'STARTED',
  ALREADY_TRACKED: 'ALREADY_TRACKED',
  REJECTED: 'REJECTED',
} as const;
export type ImportLineResult = (typeof ImportLineResult)[keyof typeof ImportLineResult];

export const ImportStatus = { RUNNING: 'RUNNING', DONE: 'DONE' } as const;
export type ImportStatus = (typeof ImportStatus)[keyof typeof ImportStatus];

/** One line as sent, fields trimmed; empty ones are null. */
export interface ImportLineInput {
  courier: string | null;
  trackingNumber: string | null;
  orderReference: string | null;
  email: string | null;
  postcode: string | null;
}

/** Rows per INSERT: well under Postgres's 65,535 parameters at 6 columns. */
const INSERT_CHUNK = 1_000;

/** Stores an import and its lines (numbered from 1, in the order sent), in one transaction. */
export async function insertImport(
  db: Kysely<Database>,
  input: { id: string; source: 'json' | 'csv'; createdBy: string; lines: ImportLineInput[] },
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('parcel_imports')
      .values({ id: input.id, total: input.lines.length, source: input.source, created_by: input.createdBy })
      .execute();
    for (let start = 0; start < input.lines.length; start += INSERT_CHUNK) {
      await trx
        .insertInto('parcel_import_lines')
        .values(
          input.lines.slice(start, start + INSERT_CHUNK).map((line, i) => ({
            import_id: input.id,
            line_no: start + i + 1,
            courier: line.courier,
            tracking_number: line.trackingNumber,
            order_reference: line.orderReference,
            email: line.email,
            postcode: line.postcode,
          })),
        )
        .execute();
    }
  });
}

export async function deleteImport(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('parcel_imports').where('id', '=', id).execute();
}

export interface ImportCounts {
  started: number;
  alreadyTracked: number;
  rejected: number;
}

/** Lines by result so far (lines not processed yet are in none). */
export async function importCounts(db: Kysely<Database>, importId: string): Promise<ImportCounts> {
  const rows = await db
    .selectFrom('parcel_import_lines')
    .select(['result', (eb) => eb.fn.countAll<string>().as('n')])
    .where('import_id', '=', importId)
    .where('result', 'is not', null)
    .groupBy('result')
    .execute();
  const of = (result: ImportLineResult) => Number(rows.find((r) => r.result === result)?.n ?? 0);
  return {
    started: of(ImportLineResult.STARTED),
    alreadyTracked: of(ImportLineResult.ALREADY_TRACKED),
    rejected: of(ImportLineResult.REJECTED),
  };
}

export async function findImport(db: Kysely<Database>, importId: string) {
  return db.selectFrom('parcel_imports').selectAll().where('id', '=', importId).executeTakeFirst();
}

/** Lines after `afterLine`, in order, optionally of one result only. */
export async function importLinesPage(
  db: Kysely<Database>,
  importId: string,
  page: { afterLine: number; limit: number; result?: ImportLineResult | null },
) {
  let query = db
    .selectFrom('parcel_import_lines')
    .select([
      'line_no',
      'courier',
      'tracking_number',
      'order_reference',
      'result',
      'reason',
      'shipment_id',
      'first_poll_at',
    ])
    .where('import_id', '=', importId)
    .where('line_no', '>', page.afterLine);
  if (page.result === null) query = query.where('result', 'is', null);
  else if (page.result) query = query.where('result', '=', page.result);
  return query.orderBy('line_no').limit(page.limit).execute();
}

export async function markImportDone(db: Kysely<Database>, importId: string): Promise<void> {
  await db
    .updateTable('parcel_imports')
    .set({ status: ImportStatus.DONE, finished_at: sql<Date>`coalesce(finished_at, now())` })
    .where('id', '=', importId)
    .execute();
}

/**
 * Housekeeping's scrub: one batch of lines of imports finished longer ago than `olderThanMs`
 * get their e-mail, postcode and order reference set to null; answers how many.
 */
export async function scrubFinishedImportLines(
  db: Kysely<Database>,
  olderThanMs: number,
  batchSize: number,
): Promise<number> {
  const result = await sql`update parcel_import_lines as l
      set email = null, postcode = null, order_reference = null
      where (l.import_id, l.line_no) in (
        select pl.import_id, pl.line_no from parcel_import_lines pl
        join parcel_imports i on i.id = pl.import_id
        where i.status = 'DONE' and i.finished_at < ${ago(olderThanMs)}
          and (pl.email is not null or pl.postcode is not null or pl.order_reference is not null)
        order by i.finished_at, pl.import_id, pl.line_no limit ${batchSize}
        for update of pl skip locked)`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** A batch of an import: its id and its lines' range (inclusive). */
export interface ImportBatch {
  importId: string;
  fromLine: number;
  toLine: number;
}

/** The batch's lines without a result yet, in line order, locked for update (run it in a transaction). */
export async function lockUndecidedLines(trx: Kysely<Database>, batch: ImportBatch) {
  return trx
    .selectFrom('parcel_import_lines')
    .select(['line_no', 'courier', 'tracking_number', 'email', 'postcode'])
    .where('import_id', '=', batch.importId)
    .where('line_no', '>=', batch.fromLine)
    .where('line_no', '<=', batch.toLine)
    .where('result', 'is', null)
    .orderBy('line_no')
    .forUpdate()
    .execute();
}

/** Inserts these parcels as shipments of no order; the ids inserted now (a parcel already there is skipped). */
export async function insertImportedShipments(
  trx: Kysely<Database>,
  parcels: { id: string; courier: string; trackingNumber: string }[],
): Promise<string[]> {
  const rows = await trx
    .insertInto('shipments')
    .values(
      parcels.map((p) => ({
        id: p.id,
        order_id: null,
        courier: p.courier,
        tracking_number: p.trackingNumber,
      })),
    )
    .onConflict((oc) => oc.doNothing())
    .returning('id')
    .execute();
  return rows.map((r) => r.id);
}

/** The shipments with any of these courier and tracking number pairs. */
export async function shipmentsByNumbers(
  trx: Kysely<Database>,
  parcels: { courier: string; trackingNumber: string }[],
) {
  return trx
    .selectFrom('shipments')
    .select(['id', 'order_id', 'courier', 'tracking_number'])
    .where((eb) =>
      eb.or(
        parcels.map((c) =>
          eb.and([eb('courier', '=', c.courier), eb('tracking_number', '=', c.trackingNumber)]),
        ),
      ),
    )
    .execute();
}

/** The import's STARTED lines for any of these shipments. */
export async function startedLinesOf(trx: Kysely<Database>, importId: string, shipmentIds: string[]) {
  return trx
    .selectFrom('parcel_import_lines')
    .select(['line_no', 'shipment_id'])
    .where('import_id', '=', importId)
    .where('result', '=', ImportLineResult.STARTED)
    .where('shipment_id', 'in', shipmentIds)
    .execute();
}

/** A line's result as the import activity decided it. */
export interface LineDecision {
  result: ImportLineResult;
  reason: string | null;
  shipmentId: string | null;
  firstPollAt: Date | null;
}

/**
 * Writes the lines' results (one statement), then gives each started parcel of the batch
 * its first poll time unless it has one.
 */
export async function recordLineDecisions(
  trx: Kysely<Database>,
  batch: ImportBatch,
  decided: Map<number, LineDecision>,
): Promise<void> {
  const values = [...decided].map(
    ([line, d]) =>
      sql`(${line}::int, ${d.result}, ${d.reason}, ${d.shipmentId}, ${d.firstPollAt}::timestamptz)`,
  );
  await sql`
    update parcel_import_lines l
    set result = v.result, reason = v.reason, shipment_id = v.shipment_id,
        first_poll_at = v.first_poll_at, processed_at = now()
    from (values ${sql.join(values)}) as v(line_no, result, reason, shipment_id, first_poll_at)
    where l.import_id = ${batch.importId} and l.line_no = v.line_no`.execute(trx);
  await sql`
    update shipments s set next_poll_at = l.first_poll_at
    from parcel_import_lines l
    where l.import_id = ${batch.importId} and l.line_no between ${batch.fromLine} and ${batch.toLine}
      and l.result = ${ImportLineResult.STARTED} and s.id = l.shipment_id and s.next_poll_at is null`.execute(
    trx,
  );
}

/** Takes `n` consecutive first-poll positions from the courier's cursor; the first one's time. */
export async function takePositions(
  trx: Transaction<Database>,
  courier: string,
  n: number,
  spacingMs: number,
  nowMs: number,
) {
  const span = n * spacingMs;
  const row = await sql<{ next_at: Date }>`
    insert into import_poll_cursors as c (courier, next_at)
    values (${courier}, ${new Date(nowMs + span)})
    on conflict (courier) do update
      set next_at = greatest(c.next_at, ${new Date(nowMs)}) + ${span} * interval '1 millisecond'
    returning next_at`.execute(trx);
  return row.rows[0]!.next_at.getTime() - span;
}

/** The batch's started parcels with their first poll time. */
export async function startedParcels(db: Kysely<Database>, batch: ImportBatch) {
  return db
    .selectFrom('parcel_import_lines as l')
    .innerJoin('shipments as s', 's.id', 'l.shipment_id')
    .select(['s.id', 's.courier', 's.tracking_number', 'l.first_poll_at'])
    .where('l.import_id', '=', batch.importId)
    .where('l.line_no', '>=', batch.fromLine)
    .where('l.line_no', '<=', batch.toLine)
    .where('l.result', '=', ImportLineResult.STARTED)
    .execute();
}
