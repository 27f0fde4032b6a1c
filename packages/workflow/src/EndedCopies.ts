import type { Logger, WorkflowResult, WorkflowState } from "@shoal/protocol";
import type { EndedWorkflow, WorkflowStore } from "./WorkflowStore.js";

interface Copy {
  owner: string;
  epoch: number;
  endedAt: number;
  state: WorkflowState;
  result: WorkflowResult;
  timer: NodeJS.Timeout;
}

export interface EndedCopiesOptions {
  store: WorkflowStore;
  logger: Logger;
  /** As long as owners keep their ended workflows (an hour)... */
  retainMs: number;
  /** ...and at most this many (the oldest go first). */
  maxRetained: number;
}

/**
 * The ended workflows of other owners that this node was a backup of: their final state and
 * result, kept (in memory and in the store, which holds them across restarts) for the owners'
 * retention, so that they stay readable from here while their owner is down.
 */
export class EndedCopies {
  private readonly copies = new Map<string, Copy>();

  constructor(private readonly options: EndedCopiesOptions) {}

  get(id: string): { owner: string; state: WorkflowState; result: WorkflowResult } | undefined {
    return this.copies.get(id);
  }

  /** A copy that just ended (the store has it already), kept for the full retention from now. */
  keep(wf: EndedWorkflow): void {
    this.hold(wf, this.options.retainMs);
  }

  /** Copies the store kept across a restart: those past their retention (counted from their end, a wall time) go. */
  load(stored: EndedWorkflow[]): number {
    const now = Date.now();
    let kept = 0;
    for (const wf of stored) {
      const left = this.options.retainMs - (now - wf.endedAt);
      if (left <= 0) this.drop(wf.id);
      else {
        this.hold(wf, left);
        kept++;
      }
    }
    return kept;
  }

  /** Drops a copy here and in the store (past its retention, or superseded). */
  drop(id: string): void {
    const copy = this.copies.get(id);
    if (copy) clearTimeout(copy.timer);
    this.copies.delete(id);
    try {
      this.options.store.forget(id);
    } catch (err) {
      this.options.logger.warn({ err, workflowId: id }, "could not drop an ended copy from the store");
    }
  }

  /** Forgets a copy in memory only (the store's row is someone else's now). */
  forget(id: string): void {
    const copy = this.copies.get(id);
    if (copy) clearTimeout(copy.timer);
    this.copies.delete(id);
  }

  private hold(wf: EndedWorkflow, forMs: number): void {
    this.forget(wf.id);
    const timer = setTimeout(() => this.drop(wf.id), forMs).unref();
    this.copies.set(wf.id, { owner: wf.owner, epoch: wf.epoch, endedAt: wf.endedAt, state: wf.state, result: wf.result, timer });
    for (const old of this.copies.keys()) {
      if (this.copies.size <= this.options.maxRetained) break;
      this.drop(old);
    }
  }
}
