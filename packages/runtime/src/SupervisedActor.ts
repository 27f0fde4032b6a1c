import { type ActorEvent, type Checkpoint, type Placement, type PlacementDecision, ShoalError, type SnapshotView, type SpawnRequest, monotonicNow } from "@shoal/protocol";
import { agedCheckpoint } from "./snapshots.js";

export type SupervisedStatus = "pending" | "starting" | "running" | "moving" | "done" | "error" | "stopped";

/** An event on its way to an actor: sent, or waiting in the actor's buffer while it is not placed. */
export interface Delivery {
  event: ActorEvent;
  ask: { timeoutMs: number; deadline: number } | undefined;
  resolve(value: SnapshotView | undefined): void;
  reject(err: ShoalError): void;
  /** Set once the delivery waits in a buffer: an ask must still end by its deadline. */
  timer?: NodeJS.Timeout;
}

/**
 * The spawner's record of one actor, wherever it runs: the handle behind an ActorRef. It lives
 * as long as the actor and across its moves; `epoch` counts its placements.
 */
export class SupervisedActor {
  status: SupervisedStatus = "pending";
  epoch = 0;
  attempt = 1;
  migrations = 0;
  nodeId: string | undefined;
  nodeName: string | undefined;
  view: SnapshotView = { status: "active" };
  /** The latest checkpoint, set through `keep`. */
  checkpoint: Checkpoint | undefined;
  /** When `checkpoint` arrived, on this node's monotonic clock: its timers have run down since. */
  private checkpointAt = 0;
  /** The placement it came from: one from a later placement is newer whatever its seq. */
  private checkpointEpoch = 0;
  decision: PlacementDecision | undefined;
  /** Why it is still waiting, while pending or moving. */
  waiting: string | undefined;
  /** The node it is moving away from, which must not get it back. */
  leaving: string | undefined;
  /** Nodes that refused it for being at a limit since it was last placed, with what they said. */
  readonly refusedBy = new Map<string, string>();
  readonly history: { node: string; epoch: number; at: string; why: string }[] = [];
  /** The node id it was placed on at each epoch: only those may report on it at that epoch. */
  readonly placements = new Map<number, string>();
  /** When its current placement's spawn went out, on the monotonic clock. */
  placedAt = 0;
  /** Wall time, for people. */
  readonly since = Date.now();
  readonly done: Promise<unknown>;
  readonly buffer: Delivery[] = [];
  private readonly listeners = new Set<(actor: SupervisedActor) => void>();
  private settle!: { resolve(v: unknown): void; reject(e: ShoalError): void };

  constructor(
    readonly id: string,
    readonly logic: string,
    readonly input: unknown,
    readonly placement: Placement,
    readonly parent: string | undefined,
    readonly key: string,
    readonly labels: SpawnRequest["labels"],
  ) {
    this.done = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // A caller that never awaits `done` must not turn a failed actor into an unhandled rejection.
    this.done.catch(() => {});
  }

  /** @internal Keeps a checkpoint from the placement at `epoch` unless the one held is newer. */
  keep(checkpoint: Checkpoint, epoch: number, force = false): void {
    if (!force && this.checkpoint && epoch <= this.checkpointEpoch && checkpoint.seq <= this.checkpoint.seq) return;
    this.checkpoint = checkpoint;
    this.checkpointAt = monotonicNow();
    this.checkpointEpoch = epoch;
  }

  /** The checkpoint as a new placement starts from it (here, or where a copy carries it): timers less the time it was kept here. */
  restoreFrom(): Checkpoint | undefined {
    return this.checkpoint && agedCheckpoint(this.checkpoint, monotonicNow() - this.checkpointAt);
  }

  get finished(): boolean {
    return this.status === "done" || this.status === "error" || this.status === "stopped";
  }

  subscribe(listener: (actor: SupervisedActor) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** @internal */
  notify(): void {
    for (const l of this.listeners) l(this);
  }

  /** @internal */
  end(status: "done" | "error" | "stopped", result: { output?: unknown; error?: ShoalError }): void {
    this.status = status;
    if (status === "done") {
      this.view = { status: "done", ...(this.view.value !== undefined && { value: this.view.value }), output: result.output };
      this.settle.resolve(result.output);
    } else {
      this.view = { ...this.view, status: status === "error" ? "error" : "stopped" };
      this.settle.reject(result.error ?? new ShoalError("SHOAL_ERR_ACTOR_STOPPED", `actor ${this.id} was stopped`));
    }
    for (const d of this.buffer.splice(0)) d.reject(new ShoalError("SHOAL_ERR_ACTOR_STOPPED", `actor ${this.id} ended (${status}) before the event was delivered`));
  }
}
