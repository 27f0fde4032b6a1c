// Waiting in benchmarks: on a condition, polled, with a deadline on the monotonic clock.

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves with `check()`'s first truthy value; throws naming `what` after `timeoutMs`. */
export async function until(check, timeoutMs, what, everyMs = 20) {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (performance.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}
