import fs from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';

export const HISTORIES_DIR = path.join(__dirname, '../replay/histories');

/**
 * With WAYBILL_RECORD_HISTORIES=1 (`npm run test:record-histories`), saves the history of a
 * finished real run under test/replay/histories/<name>.json for the replay tests.
 * Written as protobufjs JSON (`History.toJSON`) and read back with `History.fromObject`:
 * the SDK's historyToJSON/historyFromJSON trip over two protobufjs copies under Jest.
 */
export async function recordHistory(name: string, handle: WorkflowHandle): Promise<void> {
  if (process.env.WAYBILL_RECORD_HISTORIES !== '1') return;
  const history = await handle.fetchHistory();
  fs.mkdirSync(HISTORIES_DIR, { recursive: true });
  fs.writeFileSync(path.join(HISTORIES_DIR, `${name}.json`), `${JSON.stringify(history)}\n`);
}
