import { Writable } from 'node:stream';
import pino from 'pino';
import { temporalLogger } from '../src/worker';

/** A real pino logger whose lines are kept, parsed, for the test to read. */
function capturedLogger() {
  const lines: { level: number; msg: string; taskQueue?: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  return { log: pino({ level: 'trace' }, sink), lines };
}

const NO_WORKFLOWS = 'No workflows registered, not polling for workflow tasks';

describe('the Temporal runtime logger', () => {
  it("logs the SDK's warning that an activity-only worker polls no workflow tasks at info, with its fields", () => {
    const { log, lines } = capturedLogger();
    const logger = temporalLogger(log);
    logger.warn(NO_WORKFLOWS, { sdkComponent: 'worker', taskQueue: 'waybill-courier' });
    logger.log('WARN', NO_WORKFLOWS, { taskQueue: 'waybill-courier' });
    expect(lines).toEqual([
      expect.objectContaining({ level: 30, msg: NO_WORKFLOWS, taskQueue: 'waybill-courier' }),
      expect.objectContaining({ level: 30, msg: NO_WORKFLOWS, taskQueue: 'waybill-courier' }),
    ]);
  });

  it('keeps every other line at its own level', () => {
    const { log, lines } = capturedLogger();
    const logger = temporalLogger(log);
    logger.warn('Workflow task failed');
    logger.log('WARN', 'Activity heartbeat timed out');
    logger.error(NO_WORKFLOWS);
    logger.info('Worker state changed');
    logger.debug('poll');
    logger.log('TRACE', 'detail');
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [40, 'Workflow task failed'],
      [40, 'Activity heartbeat timed out'],
      [50, NO_WORKFLOWS],
      [30, 'Worker state changed'],
      [20, 'poll'],
      [10, 'detail'],
    ]);
  });
});
