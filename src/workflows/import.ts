/**
 * Import workflow (`import-<importId>`): takes over tracking of parcels shipped before the
 * switch to Waybill. The lines are in Postgres (the API stored them); this workflow walks
 * them in batches, each batch one activity that validates its lines, records the new
 * shipments and starts their shipment workflows (first polls spread over time), and writes
 * every line's result. A restarted worker carries on from the last batch done; a batch run
 * twice changes nothing. Deterministic code only.
 */
import { continueAsNew, proxyActivities, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type { ImportActivities } from '../activities/imports';
import type { PollPolicy } from '../domain/polling';

export const importWorkflowId = (importId: string): string => `import-${importId}`;

/** Lines one activity handles: a few seconds of work, a short history for 10,000 lines. */
export const IMPORT_BATCH_SIZE = 100;
/** Batches per run before continuing as new (each is a handful of history events). */
const BATCHES_PER_RUN = 200;

export interface ImportWorkflowInput {
  importId: string;
  /** Lines in the import, numbered 1…total. */
  total: number;
  /** Pins the imported parcels' poll policy (tests); absent, the worker's own applies. */
  policy?: PollPolicy;
  batchSize?: number;
  /** Present after continue-as-new: the first line not done yet. */
  nextLine?: number;
}

export interface ImportSummary {
  importId: string;
  started: number;
  alreadyTracked: number;
  rejected: number;
}

const act = proxyActivities<ImportActivities>({
  startToCloseTimeout: '2m',
  // Postgres or Temporal briefly away: retried until they answer, the import is not lost.
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});

export async function importWorkflow(input: ImportWorkflowInput): Promise<ImportSummary> {
  const batchSize = input.batchSize ?? IMPORT_BATCH_SIZE;
  let next = input.nextLine ?? 1;
  let batches = 0;
  while (next <= input.total) {
    const last = Math.min(input.total, next + batchSize - 1);
    setCurrentDetails(`import ${input.importId}: lines ${next}–${last} of ${input.total}`);
    await act.importLines.executeWithOptions({ summary: `lines ${next}–${last} of ${input.total}` }, [
      {
        importId: input.importId,
        fromLine: next,
        toLine: last,
        ...(input.policy ? { policy: input.policy } : {}),
        taskQueue: workflowInfo().taskQueue,
      },
    ]);
    next = last + 1;
    batches += 1;
    if (next <= input.total && (batches >= BATCHES_PER_RUN || workflowInfo().continueAsNewSuggested)) {
      return await continueAsNew<typeof importWorkflow>({ ...input, nextLine: next });
    }
  }
  const summary = await act.finishImport.executeWithOptions({ summary: 'mark the import done' }, [
    { importId: input.importId },
  ]);
  setCurrentDetails(
    `import ${input.importId} done: ${summary.started} started, ${summary.alreadyTracked} already tracked, ${summary.rejected} rejected`,
  );
  return summary;
}
