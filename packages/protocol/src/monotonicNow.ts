/**
 * A source of milliseconds. What a component that measures durations takes as an option, so that
 * a test can drive time by hand (`let t = 0; const clock: Clock = () => t;`).
 */
export type Clock = () => number;

/**
 * Milliseconds on this process's monotonic clock: it only moves forward, at the rate of real time,
 * whatever happens to the wall clock. Every duration a decision is taken on (timeouts, deadlines,
 * failure detection, heartbeats, leases, backoff, grace periods) is measured on it: the wall clock
 * can step (NTP, an edge box booting without RTC, `date -s`), and a step would close every link,
 * hide a hung peer, or fire every timeout at once.
 *
 * Its origin is this process's start, so its values mean nothing to another process or after a
 * restart: what travels to another node is a duration left, which the receiver turns into a
 * deadline on its own clock; what is stored across restarts, or shown to people, is wall time
 * (`Date.now()`), with a note at each such place saying why.
 */
export const monotonicNow: Clock = () => performance.now();
