import type { Logger } from "./Logger.js";
import { type Clock, monotonicNow } from "./monotonicNow.js";

export interface LogLimiterOptions {
  /** Lines let through per window... */
  perWindow?: number;
  /** ...of this many milliseconds. */
  windowMs?: number;
  now?: Clock;
}

/**
 * Lets a few lines of one kind through per window and counts the rest, so that a peer which
 * sends garbage in a loop cannot turn each frame into a log line (disk, CPU). The first line
 * after a window with suppressed lines says how many were left out.
 */
export class LogLimiter {
  private readonly perWindow: number;
  private readonly windowMs: number;
  private readonly now: Clock;
  private windowStart = Number.NEGATIVE_INFINITY;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    options: LogLimiterOptions = {},
  ) {
    this.perWindow = options.perWindow ?? 10;
    this.windowMs = options.windowMs ?? 10_000;
    this.now = options.now ?? monotonicNow;
  }

  warn(obj: Record<string, unknown>, msg: string): void {
    this.write("warn", obj, msg);
  }

  info(obj: Record<string, unknown>, msg: string): void {
    this.write("info", obj, msg);
  }

  private write(level: "warn" | "info", obj: Record<string, unknown>, msg: string): void {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.perWindow) {
      this.suppressed++;
      return;
    }
    this.inWindow++;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    this.log[level](suppressed > 0 ? { ...obj, suppressedBefore: suppressed } : obj, msg);
  }
}
