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
import { historiesOf, openWorkflowsOn, replay, type ReplaySource } from './replay';

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

const GRPC_NOT_FOUND = 5;

/** A workflow id Temporal does not know is one line, not a gRPC stack trace. */
async function* notFoundSaid<T>(items: AsyncIterable<T>, source: ReplaySource, namespace: string) {
  try {
    yield* items;
  } catch (err) {
    if ((err as { code?: number }).code !== GRPC_NOT_FOUND || source.kind !== 'workflow') throw err;
    const run = source.runId ? ` run ${source.runId}` : '';
    throw new StartupError(`no workflow ${source.workflowId}${run} in namespace ${namespace}`);
  }
}

runMain(async () => {
  // The replay worker's own life (bundling, starting, draining) is not news: warnings only.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const config = loadConfig();
  const source = sourceOf(process.argv.slice(2), config.temporal.taskQueue);
  const temporal = createTemporalClient(config);
  const counts = { ok: 0, nondeterministic: 0, error: 0 };
  try {
    if (source.kind === 'query') process.stdout.write(`replaying every workflow where ${source.query}\n`);
    const outcomes = replay(historiesOf(temporal.client, source), {
      dataConverter: createDataConverter(config.payloads),
    });
    for await (const outcome of notFoundSaid(outcomes, source, config.temporal.namespace)) {
      counts[outcome.result] += 1;
      const why = outcome.message === null ? '' : `\t${outcome.message.replace(/\s+/g, ' ')}`;
      process.stdout.write(`${outcome.result}\t${outcome.workflowId}\t${outcome.runId}${why}\n`);
    }
  } finally {
    await temporal.connection.close();
  }
  const total = counts.ok + counts.nondeterministic + counts.error;
  process.stdout.write(
    `${total} replayed: ${counts.ok} ok, ${counts.nondeterministic} non-deterministic, ${counts.error} other errors\n`,
  );
  if (counts.nondeterministic + counts.error > 0) process.exitCode = 1;
});
