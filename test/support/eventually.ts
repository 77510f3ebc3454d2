/**
 * Polls `read` every 100 ms until `accept` holds; fails naming the last value seen, and what
 * `explain` says then (e.g. the histories of the workflows that should have acted).
 */
export async function eventually<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs = 30_000,
  explain?: () => Promise<string>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await read();
  while (!accept(last)) {
    if (Date.now() > deadline) {
      const why = explain
        ? await explain().catch((err: unknown) => `(explain failed: ${String(err)})`)
        : null;
      throw new Error(`condition not reached; last value: ${JSON.stringify(last)}${why ? `\n${why}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
    last = await read();
  }
  return last;
}
