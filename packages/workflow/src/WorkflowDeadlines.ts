import { type Clock, monotonicNow } from "@shoal/protocol";

/**
 * What is left of a workflow's `deadline_ms` when a run of it starts on this node, and where the
 * deadlines of the copies kept here fall on this node's monotonic clock.
 *
 * A running workflow's deadline is a point on its owner's monotonic clock (`deadlineAt` in its
 * context), so a wall-clock step neither ends it early nor stretches it. What crosses to a backup
 * is the time left (`deadline_left_ms` in a `started` copy), which becomes a point on the
 * backup's own clock as the copy arrives: a takeover runs on with what the owner had left, less
 * the time since, whatever the two wall clocks say.
 *
 * Monotonic time does not survive a restart, so a run with no such point here (the owner's own
 * restart, or a copy from an owner that did not say) counts from the stored `started_at`, a wall
 * time: the time the node was down counts as spent (a deadline is a promise in real time), and
 * what is left is never more than `deadline_ms`, so a wall clock set back while the node was down
 * cannot stretch it; set forward, the workflow ends (`SHOAL_ERR_DEADLINE`) as it resumes.
 */
export class WorkflowDeadlines {
  private readonly at = new Map<string, number>();

  constructor(private readonly clock: Clock = monotonicNow) {}

  /** A copy arrived whose owner had `leftMs` of the deadline left when it sent it. */
  heard(id: string, leftMs: number | undefined): void {
    if (leftMs === undefined) this.at.delete(id);
    else this.at.set(id, this.clock() + leftMs);
  }

  /** The copy is gone, or runs here now (its context holds the deadline). */
  forget(id: string): void {
    this.at.delete(id);
  }

  /** Milliseconds of `deadlineMs` left for a run starting now; undefined without a deadline. */
  leftFor(id: string, deadlineMs: number | undefined, startedAt: number, wallNow = Date.now()): number | undefined {
    if (deadlineMs === undefined) return undefined;
    const at = this.at.get(id);
    if (at !== undefined) return Math.max(0, Math.round(at - this.clock()));
    return Math.min(deadlineMs, Math.max(0, startedAt + deadlineMs - wallNow));
  }
}
