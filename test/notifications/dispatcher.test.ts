import { retryDelayMs } from '../../src/notifications/dispatcher';

describe('the dispatcher’s retry delay', () => {
  const settings = { retryBaseMs: 1_000, retryMaxMs: 60_000 };

  it('doubles its ceiling per failure, jittered within the upper half, and never passes the maximum', () => {
    for (const [attempts, ceiling] of [
      [1, 1_000],
      [2, 2_000],
      [3, 4_000],
      [6, 32_000],
      [7, 60_000],
      [500, 60_000],
    ] as const) {
      const delays = Array.from({ length: 200 }, () => retryDelayMs(attempts, settings));
      expect({
        attempts,
        min: Math.min(...delays) >= ceiling / 2,
        max: Math.max(...delays) <= ceiling,
      }).toEqual({
        attempts,
        min: true,
        max: true,
      });
      // Jitter: two retries after the same failure run rarely wait the same time.
      expect(new Set(delays).size).toBeGreaterThan(1);
    }
  });
});
