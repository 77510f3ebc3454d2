/**
 * `npm run replay` (scripts/replay.ts): histories of real runs on the test Temporal server,
 * fetched by workflow id, by visibility query and from a downloaded file, replayed against
 * this checkout's workflow code, and a non-deterministic build caught on the same histories.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HistoryAndWorkflowId } from '@temporalio/common';
import { bundleWorkflowCode } from '@temporalio/worker';
import { createDataConverter } from '../../src/codec';
import {
  historiesOf,
  openWorkflowsOn,
  replay,
  type ReplayOutcome,
  type ReplaySource,
} from '../../scripts/replay';
import { testConfig, testTemporalCliPath } from '../support/env';
import { eventually } from '../support/eventually';
import { shipmentRow, trackParcel } from '../support/shipments';
import { useStack } from '../support/stack';
import { fastPolicy, stillPolicy } from '../support/temporal';

jest.setTimeout(120_000);

describe('npm run replay', () => {
  const stack = useStack({ payments: false, timeScale: 50_000 });
  const dataConverter = createDataConverter(testConfig().payloads);
  const thisCode = { codePath: process.env.WAYBILL_TEST_WORKFLOW_BUNDLE! };

  async function outcomesOf(
    source: ReplaySource | AsyncIterable<HistoryAndWorkflowId>,
    workflowBundle: { codePath: string } | { code: string } = thisCode,
  ): Promise<ReplayOutcome[]> {
    const histories = Symbol.asyncIterator in source ? source : historiesOf(stack.worker.client, source);
    const outcomes: ReplayOutcome[] = [];
    for await (const outcome of replay(histories, { dataConverter, workflowBundle })) outcomes.push(outcome);
    return outcomes;
  }

  it('replays a finished and a running workflow by id, every open one by query, and a downloaded history', async () => {
    const delivered = await trackParcel(stack, { scenario: 'delivered', policy: fastPolicy() });
    await delivered.handle.result();
    const waiting = await trackParcel(stack, { scenario: 'delivered', policy: stillPolicy() });
    await eventually(
      () => shipmentRow(stack, waiting.shipmentId),
      (row) => row.last_synced_at !== null,
    );

    const finished = await outcomesOf({ kind: 'workflow', workflowId: delivered.handle.workflowId });
    expect(finished).toEqual([
      { workflowId: delivered.handle.workflowId, runId: expect.any(String), result: 'ok', message: null },
    ]);
    expect(await outcomesOf({ kind: 'workflow', workflowId: waiting.handle.workflowId })).toMatchObject([
      { result: 'ok' },
    ]);

    // Every open workflow of this task queue: the waiting parcel's, once visibility lists it.
    const open = await eventually(
      () => outcomesOf({ kind: 'query', query: openWorkflowsOn(stack.worker.taskQueue) }),
      (outcomes) => outcomes.some((o) => o.workflowId === waiting.handle.workflowId),
    );
    expect(open.map((o) => o.workflowId)).not.toContain(delivered.handle.workflowId);
    expect(open.every((o) => o.result === 'ok')).toBe(true);

    // A history downloaded as ops would: `temporal workflow show --output json`, the UI's format.
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'replay-')), 'history.json');
    const shown = execFileSync(
      await testTemporalCliPath(),
      ['workflow', 'show', '--workflow-id', delivered.handle.workflowId, '--output', 'json'],
      { env: { ...process.env, TEMPORAL_ADDRESS: process.env.WAYBILL_TEST_TEMPORAL_ADDRESS! } },
    );
    fs.writeFileSync(file, shown);
    expect(await outcomesOf({ kind: 'file', path: file })).toMatchObject([{ result: 'ok', message: null }]);
  });

  it('npm run replay prints a line per run and a count, and names a workflow or a query it cannot replay in one line', async () => {
    const delivered = await trackParcel(stack, { scenario: 'delivered', policy: fastPolicy() });
    await delivered.handle.result();
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'scripts/replay-main.ts', ...args], {
        encoding: 'utf8',
        env: { ...process.env, TEMPORAL_ADDRESS: process.env.WAYBILL_TEST_TEMPORAL_ADDRESS! },
      });

    const ok = run(delivered.handle.workflowId);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`^ok\t${delivered.handle.workflowId}\t`, 'm'));
    expect(ok.stdout).toMatch(/^1 replayed: 1 ok, 0 non-deterministic, 0 other errors$/m);

    const unknown = run('shipment-nobody');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr.trim()).toBe('waybill: no workflow shipment-nobody in namespace default');

    const refused = run('--query', 'NoSuchAttribute = "x"');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^waybill: the visibility query was refused: /);
  });

  it('names the runs a non-deterministic build would break', async () => {
    const delivered = await trackParcel(stack, { scenario: 'delivered', policy: fastPolicy() });
    await delivered.handle.result();
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve('./fixtures/nondeterministic-workflows'),
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
    });
    const [outcome] = await outcomesOf(
      { kind: 'workflow', workflowId: delivered.handle.workflowId },
      { code },
    );
    expect(outcome).toMatchObject({
      workflowId: delivered.handle.workflowId,
      result: 'nondeterministic',
      message: expect.stringMatching(/nondetermin/i),
    });
  });
});
