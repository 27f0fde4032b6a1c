import type { Checkpoint, Logger } from "@shoal/protocol";
import type { SupervisedActor } from "@shoal/runtime";

/** A checkpoint above this size (JSON bytes) is not copied: the agent restarts from its start after a takeover. */
export const MAX_COPIED_CHECKPOINT_BYTES = 64 * 1024;

/** The latest checkpoint of one running agent step, for its workflow's copies. */
export interface StepCheckpoint {
  instance: string;
  /** The try it belongs to. */
  attempt: number;
  checkpoint: Checkpoint;
}

export interface CheckpointRelayOptions {
  /** Calls the listener on every change of an actor this node supervises (`Runtime.onPlacement`); returns how to stop. */
  subscribe(listener: (actor: SupervisedActor) => void): () => void;
  logger: Logger;
  /** A step's checkpoint goes out at most this often; the changes in between are coalesced. */
  intervalMs: number;
  maxBytes?: number;
  /** Whether this node owns the workflow now (only an owner copies it). */
  owns(workflowId: string): boolean;
  /** The checkpoints that changed since the last pass, per workflow. */
  copy(workflowId: string, steps: StepCheckpoint[]): void;
}

/**
 * Picks out the checkpoints of the agent steps of workflows owned here as the supervisor gets
 * them, and hands the latest of each to the workflow's copies, throttled: an agent checkpoints on
 * every event (its supervisor needs that to move it), a copy per event would flood the backups.
 * One pass per `intervalMs` takes only the newest checkpoint of each step that changed.
 */
export class CheckpointRelay {
  private readonly dirty = new Map<string, SupervisedActor>();
  /** The checkpoint last copied of each running actor (the supervisor replaces, never edits, one). */
  private readonly copied = new Map<string, Checkpoint>();
  private readonly tooLarge = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly unsubscribe: () => void;

  constructor(private readonly options: CheckpointRelayOptions) {
    this.unsubscribe = options.subscribe((actor) => this.changed(actor));
  }

  close(): void {
    this.unsubscribe();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.dirty.clear();
    this.copied.clear();
  }

  /** Called for every change of every supervised actor: only cheap checks before the pass. */
  private changed(actor: SupervisedActor): void {
    if (actor.finished) {
      this.dirty.delete(actor.id);
      this.copied.delete(actor.id);
      this.tooLarge.delete(actor.id);
      return;
    }
    const checkpoint = actor.checkpoint;
    if (!checkpoint || actor.labels?.workflowId === undefined || this.copied.get(actor.id) === checkpoint) return;
    this.dirty.set(actor.id, actor);
    if (!this.timer) {
      this.timer = setTimeout(() => this.pass(), this.options.intervalMs);
      this.timer.unref();
    }
  }

  private pass(): void {
    this.timer = undefined;
    const maxBytes = this.options.maxBytes ?? MAX_COPIED_CHECKPOINT_BYTES;
    const byWorkflow = new Map<string, StepCheckpoint[]>();
    for (const actor of this.dirty.values()) {
      const checkpoint = actor.checkpoint;
      const workflowId = actor.labels?.workflowId;
      const instance = actor.labels?.stepId;
      if (!checkpoint || actor.finished || workflowId === undefined || instance === undefined || !this.options.owns(workflowId)) continue;
      const bytes = Buffer.byteLength(JSON.stringify(checkpoint));
      if (bytes > maxBytes) {
        if (!this.tooLarge.has(actor.id)) {
          this.tooLarge.add(actor.id);
          this.options.logger.warn({ workflowId, step: instance, bytes, maxBytes }, "agent checkpoint too large to copy to the workflow's backups; after a takeover it starts again from its start");
        }
        continue;
      }
      this.copied.set(actor.id, checkpoint);
      const steps = byWorkflow.get(workflowId) ?? [];
      // Its timers as they are now, not as they were when it arrived here.
      steps.push({ instance, attempt: actor.attempt, checkpoint: actor.restoreFrom() ?? checkpoint });
      byWorkflow.set(workflowId, steps);
    }
    this.dirty.clear();
    for (const [workflowId, steps] of byWorkflow) {
      this.options.logger.debug({ workflowId, checkpoints: steps.map((s) => `${s.instance}@${s.checkpoint.seq}`) }, "agent checkpoints copied to the workflow's backups");
      this.options.copy(workflowId, steps);
    }
  }
}
