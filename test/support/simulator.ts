import { createSimulatorAdapter } from '../../src/couriers/simulator';
import type { CourierAdapter } from '../../src/couriers/types';
import { startSimulator, type RunningSimulator } from '../../simulators/courier/server';

/**
 * A courier simulator for one test file: a real server on a random port, started before its
 * tests and stopped after them, whose real clock is the test's `now` (moved forward instead of
 * slept), and the native adapter against it. `started` hands both to the file's variables.
 */
export function useCourierSimulator(
  opts: { now: () => number; timeScale: number },
  started: (running: { sim: RunningSimulator; adapter: CourierAdapter }) => void,
): void {
  let sim: RunningSimulator | undefined;
  beforeAll(async () => {
    sim = await startSimulator({ port: 0, timeScale: opts.timeScale, now: opts.now });
    started({ sim, adapter: createSimulatorAdapter({ baseUrl: sim.url, timeoutMs: 5_000 }) });
  });
  afterAll(() => sim?.stop());
}
