/**
 * `npm run replay`: replays workflow histories against this checkout's workflow code
 * (scripts/replay.ts) and prints one line per run; exits 1 when any does not replay.
 *
 *   npm run replay                                  # every open workflow on WAYBILL_TASK_QUEUE
 *   npm run replay -- order-ord_123 [runId]         # one workflow (its latest run, or runId)
 *   npm run replay -- --query 'WorkflowType = "orderWorkflow"'
 *   npm run replay -- --file history.json           # a history downloaded from the Temporal UI
 *
 * Reads the worker's settings: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, its TLS or API key, and
 * the payload keys (histories are sealed by the payload codec).
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createDataConverter } from '../src/codec';
import { loadConfig } from '../src/config';
import { runMain, StartupError } from '../src/main-helpers';
import { createTemporalClient } from '../src/temporal';
import {
  historiesOf,
  openWorkflowsOn,
  replay,
  ReplaySourceError,
  type ReplayOutcome,
  type ReplaySource,
} from './replay';

const USAGE =
  'usage: npm run replay -- [<workflowId> [<runId>] | --query <visibility query> | --file <history.json>]';

function sourceOf(args: string[], taskQueue: string): ReplaySource {
  const [first, second, ...rest] = args;
  if (rest.length > 0) throw new StartupError(USAGE);
  if (first === undefined) return { kind: 'query', query: openWorkflowsOn(taskQueue) };
  if (first === '--query' || first === '--file') {
    if (!second) throw new StartupError(`${first} needs a value; ${USAGE}`);
    return first === '--query' ? { kind: 'query', query: second } : { kind: 'file', path: second };
  }
  if (first.startsWith('-')) throw new StartupError(`unknown option ${first}; ${USAGE}`);
  return { kind: 'workflow', workflowId: first, ...(second ? { runId: second } : {}) };
}

runMain(async () => {
  // The replay worker's own life (bundling, starting, draining) is not news: warnings only.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const config = loadConfig();
  const source = sourceOf(process.argv.slice(2), config.temporal.taskQueue);
  const temporal = createTemporalClient(config);
  const counts = { ok: 0, nondeterministic: 0, error: 0 };
  const print = (outcome: ReplayOutcome) => {
    counts[outcome.result] += 1;
    const why = outcome.message === null ? '' : `\t${outcome.message.replace(/\s+/g, ' ')}`;
    process.stdout.write(`${outcome.result}\t${outcome.workflowId}\t${outcome.runId}${why}\n`);
  };
  try {
    if (source.kind === 'query') process.stdout.write(`replaying every workflow where ${source.query}\n`);
    const histories = historiesOf(temporal.client, source, print);
    for await (const outcome of replay(histories, { dataConverter: createDataConverter(config.payloads) }))
      print(outcome);
  } catch (err) {
    throw err instanceof ReplaySourceError ? new StartupError(err.message) : err;
  } finally {
    await temporal.connection.close();
    const total = counts.ok + counts.nondeterministic + counts.error;
    process.stdout.write(
      `${total} replayed: ${counts.ok} ok, ${counts.nondeterministic} non-deterministic, ${counts.error} other errors\n`,
    );
  }
  if (counts.nondeterministic + counts.error > 0) process.exitCode = 1;
});
