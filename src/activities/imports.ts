/**
 * Import activities: one batch of an import's lines at a time (see src/workflows/import.ts).
 * A batch validates its lines, records the new parcels as shipments, gives each a first
 * poll time from its courier's first-poll cursor, writes every line's result (all in one
 * transaction), then starts the new parcels' shipment workflows. Run twice it changes
 * nothing: processed lines are skipped, and starting a workflow that exists is a no-op.
 */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/activity';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database';
import { isCourierCode, normaliseTrackingNumber, trackingNumberProblem } from '../couriers/numbers';
import { CourierCode, type CourierAdapter } from '../couriers/types';
import {
  ImportLineResult,
  importCounts,
  insertImportedShipments,
  lockUndecidedLines,
  markImportDone,
  recordLineDecisions,
  shipmentsByNumbers,
  startedLinesOf,
  startedParcels,
  takePositions,
  type ImportCounts,
} from '../read-model/imports';
import type { Logger } from '../logger';
import { FailureType } from '../domain/failures';
import { alignToSlot, type PollPolicy } from '../domain/polling';
import { ShipmentStatus } from '../domain/status';
import { pollBudget } from './courier-budget';
import { SHIPMENT_WORKFLOW_TASK_TIMEOUT, shipmentWorkflowId } from '../workflows/contract';
import { shipmentSearchAttributes } from '../workflows/search-attributes';
import type { shipmentWorkflow } from '../workflows/shipment';

export interface ImportActivityDeps {
  db: Kysely<Database>;
  temporal?: Client;
  couriers: Partial<Record<CourierCode, CourierAdapter>>;
  dailyBudget: number;
  /** Of the daily budget, the calls polls leave to bookings (default: a tenth). */
  bookingReserve?: number;
  log: Logger;
  now?: () => number;
  /** This worker's poll policy: the imported parcels' shipment workflows run on it. */
  pollPolicy?: PollPolicy;
}

export interface ImportLinesInput {
  importId: string;
  fromLine: number;
  toLine: number;
  /** Pins the parcels' poll policy (tests); absent, this worker's own. */
  policy?: PollPolicy;
  /** Where shipment workflows run. */
  taskQueue: string;
}

/**
 * The share of what polls may use of a courier's daily call budget (the budget less its
 * booking reserve) imported parcels' first polls may use: the rest stays for the parcels
 * already tracked. A first poll costs 1/maxBatch of a call.
 */
export const IMPORT_BUDGET_SHARE = 0.5;
const DAY_MS = 86_400_000;
/** Shipment workflows started at once (the Temporal frontend is shared). */
const START_CONCURRENCY = 10;

/** An imported parcel's shipment id: its workflow is `shipment-<courier>-<number>`. */
export const importedShipmentId = (courier: CourierCode, trackingNumber: string): string =>
  `${courier}-${trackingNumber}`;

const EMAIL =
  /^[^\s@"<>(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;
const POSTCODE = /^[A-Za-z0-9][A-Za-z0-9 -]{1,11}$/;

type LineRow = {
  line_no: number;
  courier: string | null;
  tracking_number: string | null;
  email: string | null;
  postcode: string | null;
};
type Checked = { problem: string } | { courier: CourierCode; trackingNumber: string };

/** Why a line cannot be tracked, or its courier and normalised number. */
export function checkImportLine(
  line: Omit<LineRow, 'line_no'>,
  configured: (c: CourierCode) => boolean,
): Checked {
  if (!line.courier) return { problem: 'missing courier' };
  if (!line.tracking_number) return { problem: 'missing trackingNumber' };
  const courier = line.courier.toLowerCase();
  if (!isCourierCode(courier) || !configured(courier))
    return { problem: `unknown courier "${line.courier}"` };
  // Nothing polls the shop's own fleet: only its drivers report, on parcels dispatch gave them.
  if (courier === CourierCode.FLEET)
    return {
      problem: 'courier "fleet" is the shop\'s own fleet: its parcels are booked by orders, not imported',
    };
  const trackingNumber = normaliseTrackingNumber(line.tracking_number);
  const badNumber = trackingNumberProblem(courier, trackingNumber);
  if (badNumber) return { problem: badNumber };
  if (line.email !== null && (line.email.length > 254 || !EMAIL.test(line.email))) {
    return { problem: `email "${line.email}" is not an e-mail address` };
  }
  if (line.postcode !== null && !POSTCODE.test(line.postcode)) {
    return {
      problem: `postcode "${line.postcode}" is not a postcode (2 to 12 letters, digits, spaces, dashes)`,
    };
  }
  return { courier, trackingNumber };
}

/**
 * When imported parcels of a courier are first polled: `spacingMs` apart on average (so their
 * calls stay within IMPORT_BUDGET_SHARE of `pollCalls`, what polls may use of the daily
 * budget), gathered into windows that fill one bulk call (at least the courier's slot, or a
 * minute, or the policy's shortest interval when tests shrink it), on the courier's slot
 * boundaries.
 */
export function firstPollPlan(policy: PollPolicy, courier: CourierCode, pollCalls: number, maxBatch: number) {
  const spacingMs = DAY_MS / (IMPORT_BUDGET_SHARE * pollCalls * Math.max(1, maxBatch));
  const base = policy.couriers?.[courier]?.slotMs || Math.min(60_000, ...Object.values(policy.intervalMs));
  const windowMs = Math.max(base, Math.ceil(spacingMs * maxBatch));
  return {
    spacingMs,
    at: (positionMs: number) => alignToSlot(Math.ceil(positionMs / windowMs) * windowMs, policy, courier),
  };
}

export function createImportActivities(deps: ImportActivityDeps) {
  /** The policy first polls are planned by: the pinned one, or the worker's (its shipment workflows ask it too). */
  const policyOf = (input: ImportLinesInput): PollPolicy => {
    const policy = input.policy ?? deps.pollPolicy;
    if (policy) return policy;
    throw ApplicationFailure.create({
      type: FailureType.NOT_CONFIGURED,
      message: 'this worker was started without a poll policy',
      nonRetryable: true,
    });
  };
  const { db, log } = deps;
  const now = deps.now ?? Date.now;
  const configured = (c: CourierCode) => deps.couriers[c] !== undefined;

  /** Decides and records the results of the batch's unprocessed lines (one transaction). */
  async function decide(input: ImportLinesInput): Promise<void> {
    await db.transaction().execute(async (trx) => {
      const lines = await lockUndecidedLines(trx, input);
      if (lines.length === 0) return;
      type Decision = {
        result: ImportLineResult;
        reason: string | null;
        shipmentId: string | null;
        firstPollAt: Date | null;
      };
      const decided = new Map<number, Decision>();
      /** The first line of this batch per parcel (shipment id), and its courier and number. */
      const first = new Map<string, { line: number; courier: CourierCode; trackingNumber: string }>();
      const later: { line: number; id: string }[] = [];
      for (const line of lines) {
        const checked = checkImportLine(line, configured);
        if ('problem' in checked) {
          decided.set(line.line_no, {
            result: ImportLineResult.REJECTED,
            reason: checked.problem,
            shipmentId: null,
            firstPollAt: null,
          });
          continue;
        }
        const id = importedShipmentId(checked.courier, checked.trackingNumber);
        if (first.has(id)) later.push({ line: line.line_no, id });
        else first.set(id, { line: line.line_no, ...checked });
      }
      const candidates = [...first.entries()];
      const inserted = new Set<string>();
      if (candidates.length > 0) {
        const ids = await insertImportedShipments(
          trx,
          candidates.map(([id, c]) => ({ id, courier: c.courier, trackingNumber: c.trackingNumber })),
        );
        for (const id of ids) inserted.add(id);
      }
      // Parcels tracked before this batch: by an order, an earlier import, or an earlier line of this one.
      const known = candidates.filter(([id]) => !inserted.has(id));
      const existing =
        known.length === 0
          ? []
          : await shipmentsByNumbers(
              trx,
              known.map(([, c]) => c),
            );
      const earlier =
        existing.length === 0
          ? []
          : await startedLinesOf(
              trx,
              input.importId,
              existing.map((e) => e.id),
            );
      for (const [id, c] of known) {
        const row = existing.find((e) => e.courier === c.courier && e.tracking_number === c.trackingNumber);
        const line = earlier.find((e) => e.shipment_id === row?.id);
        const reason = line
          ? `same parcel as line ${line.line_no} of this import`
          : row?.order_id
            ? `tracked already as shipment ${row.id} of order ${row.order_id}`
            : `tracked already as shipment ${row?.id ?? id}`;
        decided.set(c.line, {
          result: ImportLineResult.ALREADY_TRACKED,
          reason,
          shipmentId: row?.id ?? id,
          firstPollAt: null,
        });
      }
      // New parcels: first poll positions per courier, in line order.
      const nowMs = now();
      const byCourier = new Map<CourierCode, string[]>();
      for (const [id, c] of candidates)
        if (inserted.has(id)) byCourier.set(c.courier, [...(byCourier.get(c.courier) ?? []), id]);
      for (const [courier, ids] of byCourier) {
        const plan = firstPollPlan(
          policyOf(input),
          courier,
          pollBudget(deps),
          deps.couriers[courier]!.maxBatch,
        );
        const start = await takePositions(trx, courier, ids.length, plan.spacingMs, nowMs);
        ids.forEach((id, i) => {
          decided.set(first.get(id)!.line, {
            result: ImportLineResult.STARTED,
            reason: null,
            shipmentId: id,
            firstPollAt: new Date(plan.at(start + i * plan.spacingMs)),
          });
        });
      }
      for (const { line, id } of later) {
        const firstLine = first.get(id)!.line;
        const its = decided.get(firstLine)!;
        decided.set(line, {
          result: ImportLineResult.ALREADY_TRACKED,
          reason:
            its.result === ImportLineResult.STARTED
              ? `same parcel as line ${firstLine} of this import`
              : its.reason,
          shipmentId: its.shipmentId,
          firstPollAt: null,
        });
      }
      await recordLineDecisions(trx, input, decided);
    });
  }

  /** Starts the shipment workflows of the batch's started lines; one that exists (or ran) is left alone. */
  async function startTracking(input: ImportLinesInput): Promise<number> {
    const temporal = deps.temporal;
    if (!temporal) throw new Error('the import activities need a Temporal client (ActivityDeps.temporal)');
    const parcels = await startedParcels(db, input);
    let started = 0;
    for (let i = 0; i < parcels.length; i += START_CONCURRENCY) {
      await Promise.all(
        parcels.slice(i, i + START_CONCURRENCY).map(async (p) => {
          try {
            await temporal.workflow.start<typeof shipmentWorkflow>('shipmentWorkflow', {
              workflowId: shipmentWorkflowId(p.id),
              taskQueue: input.taskQueue,
              workflowTaskTimeout: SHIPMENT_WORKFLOW_TASK_TIMEOUT,
              // A parcel whose tracking ended (delivered) is not started again by a retry.
              workflowIdReusePolicy: 'REJECT_DUPLICATE',
              staticSummary: `Imported parcel ${p.courier} ${p.tracking_number} (import ${input.importId})`,
              typedSearchAttributes: shipmentSearchAttributes(
                { courier: p.courier as CourierCode, trackingNumber: p.tracking_number },
                ShipmentStatus.PENDING,
              ),
              args: [
                {
                  shipmentId: p.id,
                  orderId: null,
                  courier: p.courier as CourierCode,
                  trackingNumber: p.tracking_number,
                  ...(input.policy ? { policy: input.policy } : {}),
                  nextPollAtMs: p.first_poll_at?.getTime() ?? null,
                },
              ],
            });
            started += 1;
          } catch (err) {
            if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
          }
        }),
      );
    }
    return started;
  }

  return {
    /** One batch of an import: results decided and recorded, then the new parcels' workflows started. */
    async importLines(input: ImportLinesInput): Promise<{ workflowsStarted: number }> {
      await decide(input);
      const workflowsStarted = await startTracking(input);
      log.info(
        { importId: input.importId, from: input.fromLine, to: input.toLine, workflowsStarted },
        'import batch done',
      );
      return { workflowsStarted };
    },

    /** Marks the import done; its counts by result. */
    async finishImport(input: { importId: string }): Promise<ImportCounts & { importId: string }> {
      await markImportDone(db, input.importId);
      return { importId: input.importId, ...(await importCounts(db, input.importId)) };
    },
  };
}

export type ImportActivities = ReturnType<typeof createImportActivities>;
