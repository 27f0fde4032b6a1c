import { monotonicNow } from "@shoal/protocol";

export interface FailureDetectorOptions {
  /** How often `check` is expected to run. */
  intervalMs: number;
  /** Silence after which a peer is suspect. */
  suspectAfterMs: number;
  /** Silence after which a peer is down. */
  downAfterMs: number;
}

export interface Verdict {
  id: string;
  status: "suspect" | "down";
  silentMs: number;
}

/**
 * Decides from silence alone: the last time each peer was heard from, against two thresholds,
 * all on the monotonic clock (a wall-clock step would otherwise make every peer look silent, or
 * a hung one look fresh).
 * When this node's own event loop was blocked, every peer looks silent for the length of the
 * block; `check` notices that it ran late and forgives the gap instead of blaming the peers.
 */
export class FailureDetector {
  private readonly lastHeard = new Map<string, number>();
  private lastCheckAt: number | undefined;

  constructor(private readonly options: FailureDetectorOptions) {}

  heard(id: string, at = monotonicNow()): void {
    const previous = this.lastHeard.get(id);
    if (previous === undefined || at > previous) this.lastHeard.set(id, at);
  }

  forget(id: string): void {
    this.lastHeard.delete(id);
  }

  lastHeardAt(id: string): number | undefined {
    return this.lastHeard.get(id);
  }

  /** Verdicts for the given peers (those not already down). */
  check(ids: Iterable<string>, now = monotonicNow()): Verdict[] {
    const late = this.lastCheckAt !== undefined ? now - this.lastCheckAt - this.options.intervalMs : 0;
    this.lastCheckAt = now;
    if (late > this.options.intervalMs) {
      // We were blocked for about `late` ms; what we did not read meanwhile is not their fault.
      for (const [id, at] of this.lastHeard) this.lastHeard.set(id, Math.min(now, at + late));
    }
    const verdicts: Verdict[] = [];
    for (const id of ids) {
      const at = this.lastHeard.get(id);
      if (at === undefined) {
        this.lastHeard.set(id, now);
        continue;
      }
      const silentMs = now - at;
      if (silentMs >= this.options.downAfterMs) verdicts.push({ id, status: "down", silentMs });
      else if (silentMs >= this.options.suspectAfterMs) verdicts.push({ id, status: "suspect", silentMs });
    }
    return verdicts;
  }
}
