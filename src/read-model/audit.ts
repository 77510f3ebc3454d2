/**
 * The audit log (`audit_log`): who did what to which subject, why, with details. An entry
 * with a dedupe key is written once, however often its writer runs (a retried activity, a
 * replayed request); one without is written each time. Written on `db` or in the caller's
 * transaction, beside the change it records.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';

export interface AuditEntry {
  actor: string;
  action: string;
  subjectType: string;
  subjectId: string;
  reason: string | null;
  details?: Record<string, unknown>;
  /** Makes the entry once: a second write with the same key is ignored. */
  dedupeKey: string | null;
}

export async function writeAudit(db: Kysely<Database>, entries: AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const insert = db.insertInto('audit_log').values(
    entries.map((e) => ({
      actor: e.actor,
      action: e.action,
      subject_type: e.subjectType,
      subject_id: e.subjectId,
      reason: e.reason,
      details: JSON.stringify(e.details ?? {}),
      dedupe_key: e.dedupeKey,
    })),
  );
  const keyed = entries.some((e) => e.dedupeKey !== null);
  await (keyed ? insert.onConflict((oc) => oc.column('dedupe_key').doNothing()) : insert).execute();
}
