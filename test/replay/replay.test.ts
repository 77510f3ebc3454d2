/**
 * Determinism guard: histories of real runs (recorded by `npm run test:record-histories`
 * into test/replay/histories) are replayed against today's workflow code. A change that
 * would break running workflows fails here; it needs `patched()` or a new workflow type.
 */
import fs from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { createDataConverter } from '../../src/codec';
import { HISTORIES_DIR } from '../support/histories';
import { testConfig } from '../support/env';

const histories = fs
  .readdirSync(HISTORIES_DIR)
  .filter((file) => file.endsWith('.json'))
  .sort();

/**
 * The workers' own converter: recorded histories are stored decoded (test/support/histories.ts)
 * and the codec passes unsealed payloads through, so a sealed history would replay too.
 */
const dataConverter = createDataConverter(testConfig().payloads);

/** Histories are protobufjs JSON (see test/support/histories.ts); fromObject reads it back. */
function load(file: string) {
  return temporal.api.history.v1.History.fromObject(
    JSON.parse(fs.readFileSync(path.join(HISTORIES_DIR, file), 'utf8')),
  );
}

jest.setTimeout(60_000);

describe('replaying recorded histories', () => {
  it('has histories of the happy path, a cancellation, an outage and continue-as-new', () => {
    expect(histories).toEqual(
      expect.arrayContaining([
        'order-delivered.json',
        'order-cancelled.json',
        'order-booking-failed-courier-500.json',
        'shipment-delivered.json',
        'shipment-outage-recovered.json',
        'shipment-after-continue-as-new.json',
      ]),
    );
  });

  it.each(histories)('replays %s against the current workflow code', async (file) => {
    await expect(
      Worker.runReplayHistory(
        { workflowBundle: { codePath: process.env.WAYBILL_TEST_WORKFLOW_BUNDLE! }, dataConverter },
        load(file),
      ),
    ).resolves.toBeUndefined();
  });

  it('fails a deliberately non-deterministic change', async () => {
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve('./fixtures/nondeterministic-workflows'),
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
    });
    await expect(
      Worker.runReplayHistory({ workflowBundle: { code } }, load('shipment-delivered.json')),
    ).rejects.toBeInstanceOf(DeterminismViolationError);
  });
});
