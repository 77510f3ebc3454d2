/**
 * Replays workflow histories against the workflow code of this checkout: the check before a
 * build is rolled out (does today's code still make the same decisions as the runs in
 * flight?), and during a non-determinism incident (which workflows does it hit, and does the
 * fix replay them?). `npm run replay` (scripts/replay-main.ts) is its command line.
 *
 * Histories come from Temporal (by workflow id, or every workflow a visibility query finds)
 * or from a file (the JSON the Temporal UI and `temporal workflow show --output json`
 * download). Payloads are opened with the workers' own data converter, so the payload keys
 * the workers have are needed.
 */
import fs from 'node:fs';
import type { Client } from '@temporalio/client';
import type { DataConverter, HistoryAndWorkflowId } from '@temporalio/common';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { GRPC, grpcCode } from '../src/temporal';
import { workflowsPath } from '../src/workflow-bundle';

export interface ReplayOutcome {
  workflowId: string;
  runId: string;
  /** 'ok', or why the replay failed: a non-deterministic change, or another replay error. */
  result: 'ok' | 'nondeterministic' | 'error';
  message: string | null;
}

export type ReplaySource =
  | { kind: 'workflow'; workflowId: string; runId?: string }
  | { kind: 'query'; query: string }
  | { kind: 'file'; path: string };

/** The default query: every open workflow on this deployment's task queue. */
export const openWorkflowsOn = (taskQueue: string) =>
  `TaskQueue = ${JSON.stringify(taskQueue)} AND ExecutionStatus = "Running"`;

/** A source that names no history to replay (a file that cannot be read, a refused query, an unknown id). */
export class ReplaySourceError extends Error {
  override name = 'ReplaySourceError';
}

/** The gRPC status code of an error, or of the one the client's ServiceError wraps. */
const statusOf = (err: unknown) => grpcCode(err) ?? grpcCode((err as { cause?: unknown }).cause ?? {});
/** What the server said: the wrapped gRPC error's details, else the message. */
const said = (err: unknown) => {
  const { details } = (err as { cause?: { details?: string } }).cause ?? {};
  return details || (err as Error).message;
};

/**
 * The histories a source names, fetched lazily (a query may find thousands). A query's run
 * whose history cannot be fetched (gone by retention since it was listed, say) is told to
 * `unfetched` and skipped; the others still replay.
 */
export async function* historiesOf(
  client: Client,
  source: ReplaySource,
  unfetched: (outcome: ReplayOutcome) => void = () => undefined,
): AsyncIterable<HistoryAndWorkflowId> {
  if (source.kind === 'file') {
    let history;
    try {
      history = historyFromJSON(JSON.parse(fs.readFileSync(source.path, 'utf8')));
    } catch (err) {
      throw new ReplaySourceError(`cannot read a history from ${source.path}: ${(err as Error).message}`);
    }
    // A downloaded history does not carry its workflow id: the file names it.
    yield { workflowId: source.path, history };
    return;
  }
  if (source.kind === 'workflow') {
    let history;
    try {
      history = await client.workflow.getHandle(source.workflowId, source.runId).fetchHistory();
    } catch (err) {
      if (statusOf(err) !== GRPC.NOT_FOUND) throw err;
      const run = source.runId ? ` run ${source.runId}` : '';
      throw new ReplaySourceError(
        `no workflow ${source.workflowId}${run} in namespace ${client.options.namespace}`,
      );
    }
    yield { workflowId: source.workflowId, history };
    return;
  }
  const listed = client.workflow.list({ query: source.query })[Symbol.asyncIterator]();
  for (;;) {
    let next;
    try {
      next = await listed.next();
    } catch (err) {
      if (statusOf(err) !== GRPC.INVALID_ARGUMENT) throw err;
      throw new ReplaySourceError(`the visibility query was refused: ${said(err)}`);
    }
    if (next.done) return;
    const { workflowId, runId } = next.value;
    let history;
    try {
      history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    } catch (err) {
      unfetched({
        workflowId,
        runId,
        result: 'error',
        message: `history not fetched: ${said(err)}`,
      });
      continue;
    }
    yield { workflowId, history };
  }
}

/**
 * Replays each history against this checkout's workflow code (or `workflowBundle`), one
 * outcome per history, in order.
 */
export async function* replay(
  histories: AsyncIterable<HistoryAndWorkflowId>,
  opts: { dataConverter: DataConverter; workflowBundle?: { codePath: string } | { code: string } },
): AsyncIterable<ReplayOutcome> {
  const code = opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath };
  const results = Worker.runReplayHistories({ ...code, dataConverter: opts.dataConverter }, histories);
  for await (const { workflowId, runId, error } of results) {
    yield {
      workflowId,
      runId,
      result: !error ? 'ok' : error instanceof DeterminismViolationError ? 'nondeterministic' : 'error',
      message: error ? error.message : null,
    };
  }
}
