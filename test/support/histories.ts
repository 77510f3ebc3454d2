import fs from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { createPayloadCodec, decodeHistory } from '../../src/codec';
import { testConfig } from './env';

export const HISTORIES_DIR = path.join(__dirname, '../replay/histories');

/**
 * With WAYBILL_RECORD_HISTORIES=1 (`npm run test:record-histories`), saves the history of a
 * finished real run under test/replay/histories/<name>.json for the replay tests.
 * Written as protobufjs JSON (`History.toJSON`) and read back with `History.fromObject`:
 * the SDK's historyToJSON/historyFromJSON trip over two protobufjs copies under Jest.
 *
 * Stored decoded: the server holds sealed payloads (src/codec), the file holds them opened with
 * the test key, so a review reads what the workflow saw and the files do not depend on a key.
 * The replay test replays them through the same codec, which passes unsealed payloads through.
 */
export async function recordHistory(name: string, handle: WorkflowHandle): Promise<void> {
  if (process.env.WAYBILL_RECORD_HISTORIES !== '1') return;
  const history = await openedHistory(handle);
  fs.mkdirSync(HISTORIES_DIR, { recursive: true });
  fs.writeFileSync(path.join(HISTORIES_DIR, `${name}.json`), `${JSON.stringify(history)}\n`);
}

/** A workflow's history with its payloads opened by the test key: what ops see through the codec server. */
export async function openedHistory(handle: WorkflowHandle): Promise<temporal.api.history.v1.IHistory> {
  return decodeHistory(await handle.fetchHistory(), createPayloadCodec(testConfig().payloads));
}
