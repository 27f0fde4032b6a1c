export interface BackoffOptions {
  /** Delay before the first retry. */
  initialMs?: number;
  /** Delays never grow past this. */
  maxMs?: number;
  factor?: number;
  /** Source of randomness in [0, 1), replaceable in tests. */
  random?: () => number;
}

/**
 * Exponential backoff with "full jitter": the n-th delay is uniform in [0, min(max, initial*f^n)],
 * so peers that lost the same node do not all redial it in the same instant.
 */
export function createBackoff(options: BackoffOptions = {}) {
  const initialMs = options.initialMs ?? 100;
  const maxMs = options.maxMs ?? 5_000;
  const factor = options.factor ?? 2;
  const random = options.random ?? Math.random;
  let attempt = 0;
  return {
    /** The delay to wait before the next attempt; each call counts one attempt. */
    next(): number {
      const ceiling = Math.min(maxMs, initialMs * factor ** attempt);
      attempt++;
      return Math.max(1, Math.round(ceiling * random()));
    },
    reset(): void {
      attempt = 0;
    },
    get attempts(): number {
      return attempt;
    },
  };
}

export type Backoff = ReturnType<typeof createBackoff>;
