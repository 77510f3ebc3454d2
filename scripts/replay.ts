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
import { workflowBundlerOptions } from '../src/workflow-bundle';

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

/** The histories a source names, fetched lazily (a query may find thousands). */
export async function* historiesOf(
  client: Client,
  source: ReplaySource,
): AsyncIterable<HistoryAndWorkflowId> {
  if (source.kind === 'file') {
    const parsed = JSON.parse(fs.readFileSync(source.path, 'utf8')) as {
      events?: { [k: string]: unknown }[];
    };
    // A downloaded history does not carry its workflow id: the file names it.
    yield { workflowId: source.path, history: historyFromJSON(parsed) };
    return;
  }
  if (source.kind === 'workflow') {
    const history = await client.workflow.getHandle(source.workflowId, source.runId).fetchHistory();
    yield { workflowId: source.workflowId, history };
    return;
  }
  yield* client.workflow.list({ query: source.query }).intoHistories();
}

/**
 * Replays each history against this checkout's workflow code (or `workflowBundle`), one
 * outcome per history, in order.
 */
export async function* replay(
  histories: AsyncIterable<HistoryAndWorkflowId>,
  opts: { dataConverter: DataConverter; workflowBundle?: { codePath: string } | { code: string } },
): AsyncIterable<ReplayOutcome> {
  const code = opts.workflowBundle
    ? { workflowBundle: opts.workflowBundle }
    : { workflowsPath: workflowBundlerOptions(false).workflowsPath };
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
