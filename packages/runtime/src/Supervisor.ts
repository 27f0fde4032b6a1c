import { EventEmitter } from "node:events";
import {
  type ActorEvent,
  type ActorOutcome,
  type ActorUpdate,
  type Checkpoint,
  type HostReply,
  type Logger,
  type Member,
  type Placement,
  type PlacementDecision,
  ShoalError,
  type SnapshotView,
  type SpawnRequest,
  isShoalError,
  monotonicNow,
} from "@shoal/protocol";
import { DeliveryBuffer } from "./DeliveryBuffer.js";
import { PlacementQueue } from "./PlacementQueue.js";
import { SupervisedActor } from "./SupervisedActor.js";
import { viewOfUpdate } from "./snapshots.js";

/** How a supervisor reaches hosts: in process for this node, through the mesh for others. */
export interface HostLink {
  spawn(nodeId: string, req: SpawnRequest): Promise<{ node: string; since: number }>;
  send(nodeId: string, actorId: string, event: ActorEvent): Promise<HostReply>;
  ask(nodeId: string, actorId: string, event: ActorEvent, timeoutMs: number): Promise<HostReply>;
  stop(nodeId: string, actorId: string, epoch: number): Promise<void>;
  /** The ids of these placements that the host does not run (see `host.holds`). */
  holds(nodeId: string, actors: { actorId: string; epoch: number }[]): Promise<string[]>;
}

export interface SpawnOptions {
  placement?: Placement;
  /** The parent actor (for the record and devtools). */
  parent?: string;
  id?: string;
  /** Idempotency key handed to tools; defaults to the actor id. */
  key?: string;
  /** Which try this is, when the caller retries (workflow steps); 1 by default. */
  attempt?: number;
  labels?: SpawnRequest["labels"];
  /**
   * Where a machine actor starts from: a checkpoint kept elsewhere (a workflow's copy, when its
   * owner went down). It is placed as a migrated actor is, from that checkpoint.
   */
  checkpoint?: Checkpoint;
}

/** Spawn failures that say "try another node", not "this can never run". */
const RETRY_ELSEWHERE = new Set(["SHOAL_ERR_NO_SLOT", "SHOAL_ERR_DRAINING", "SHOAL_ERR_PEER_CLOSED", "SHOAL_ERR_NOT_CONNECTED", "SHOAL_ERR_REQUEST_TIMEOUT", "SHOAL_ERR_BACKPRESSURE"]);

export interface SupervisorOptions {
  selfId: string;
  selfName: string;
  /** The membership, with this node's own record showing its live load. */
  members(): Member[];
  link: HostLink;
  logger: Logger;
  /** Wait before trying again after a host said it had no free slot. */
  retryDelayMs?: number;
  /** Finished actors stay queryable this long. */
  retainFinishedMs?: number;
}

export interface SupervisorEvents {
  changed: [actor: SupervisedActor];
}

/**
 * The spawner side of remote actors: placement (the queue of actors waiting for a slot is
 * `PlacementQueue`), and what happens after: snapshots and checkpoints in, one outcome per
 * placement (older epochs fenced off), messages buffered while an actor moves
 * (`DeliveryBuffer`), re-placement when its node goes down. Each actor's record is a
 * `SupervisedActor`.
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  /** Actors not yet ended: every scan (placement, reservations, node loss) walks only these. */
  private readonly actors = new Map<string, SupervisedActor>();
  /** Ended actors, kept for `get` and the API for `retainFinishedMs`. */
  private readonly finished = new Map<string, SupervisedActor>();
  private readonly queue: PlacementQueue;
  private readonly deliveries: DeliveryBuffer;
  private readonly log: Logger;
  private retryTimer: NodeJS.Timeout | undefined;
  private counter = 0;
  /** Updates and outcomes from placements that were already replaced: counted, then dropped. */
  staleMessages = 0;

  constructor(private readonly options: SupervisorOptions) {
    super();
    this.log = options.logger.child({ component: "supervisor" });
    this.queue = new PlacementQueue({
      selfId: options.selfId,
      members: () => options.members(),
      active: () => this.actors.values(),
      launch: (actor, decision) => void this.launch(actor, decision),
      fail: (actor, error) => {
        this.log.warn({ actorId: actor.id, logic: actor.logic, err: error.message }, "actor cannot be placed");
        actor.end("error", { error });
        this.changed(actor);
        this.retire(actor);
      },
      waiting: (actor) => this.changed(actor),
    });
    this.deliveries = new DeliveryBuffer({
      send: (nodeId, actorId, event) => options.link.send(nodeId, actorId, event),
      ask: (nodeId, actorId, event, timeoutMs) => options.link.ask(nodeId, actorId, event, timeoutMs),
      current: (nodeId, actorId, epoch) => this.current(nodeId, actorId, epoch),
      mirror: (actor, view, checkpoint) => this.mirror(actor, view, checkpoint),
      move: (actor, why) => this.move(actor, why),
      retrySoon: () => this.retrySoon(),
    });
  }

  spawn(logic: string, input: unknown, options: SpawnOptions = {}): SupervisedActor {
    const id = options.id ?? `${this.options.selfName}~${(++this.counter).toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    if (this.actors.has(id) || this.finished.has(id)) throw new ShoalError("SHOAL_ERR_BAD_INPUT", `actor id ${id} is taken`);
    const actor = new SupervisedActor(id, logic, input, options.placement ?? {}, options.parent, options.key ?? id, options.labels);
    if (options.attempt !== undefined) actor.attempt = options.attempt;
    if (options.checkpoint) {
      // The migration path: it continues from where it was on its previous supervisor's watch.
      actor.keep(options.checkpoint, 0, true);
      actor.migrations++;
    }
    this.actors.set(id, actor);
    this.queue.push(actor);
    return actor;
  }

  /** Actors supervised here that have not ended: placed, or waiting for a slot. */
  get active(): number {
    return this.actors.size;
  }

  get(actorId: string): SupervisedActor | undefined {
    return this.actors.get(actorId) ?? this.finished.get(actorId);
  }

  all(): SupervisedActor[] {
    return [...this.actors.values(), ...this.finished.values()];
  }

  /** Delivers an event; while the actor is not placed (or moving) it waits in the actor's buffer. */
  send(actorId: string, event: ActorEvent): Promise<void> {
    return this.deliveries.deliver(this.require(actorId), event, undefined).then(() => undefined);
  }

  /** Delivers an event and resolves with the actor's snapshot right after it. */
  ask(actorId: string, event: ActorEvent, timeoutMs: number): Promise<SnapshotView> {
    return this.deliveries.deliver(this.require(actorId), event, { timeoutMs }) as Promise<SnapshotView>;
  }

  async stop(actorId: string): Promise<void> {
    const actor = this.require(actorId);
    if (actor.finished) return;
    this.queue.remove(actor);
    const { nodeId, epoch } = actor;
    actor.end("stopped", {});
    this.changed(actor);
    this.retire(actor);
    if (nodeId) {
      await this.options.link.stop(nodeId, actorId, epoch).catch((err: unknown) => this.log.warn({ err, actorId }, "could not stop the actor on its host"));
    }
    this.pump();
  }

  /** A host's coalesced snapshot and checkpoint. */
  onUpdate(fromNodeId: string, update: ActorUpdate): void {
    const actor = this.current(fromNodeId, update.actorId, update.epoch);
    if (actor) this.mirror(actor, viewOfUpdate(update), update.checkpoint);
  }

  /** From the current placement only (see `current`). */
  private mirror(actor: SupervisedActor, view: SnapshotView, checkpoint: Checkpoint | undefined): void {
    actor.view = view;
    if (checkpoint) actor.keep(checkpoint, actor.epoch);
    this.changed(actor);
  }

  /** A host's outcome for one placement; stale ones are acknowledged and dropped. */
  onOutcome(fromNodeId: string, outcome: ActorOutcome): void {
    const actor = this.current(fromNodeId, outcome.actorId, outcome.epoch);
    if (!actor) return;
    if (outcome.status === "done") actor.end("done", { output: outcome.output });
    else if (outcome.status === "error") {
      const error = outcome.error ?? { code: "SHOAL_ERR_ACTOR_FAILED", message: "actor failed" };
      actor.end("error", { error: new ShoalError(error.code, error.message) });
    } else actor.end("stopped", {});
    this.log.info({ actorId: actor.id, status: outcome.status, node: actor.nodeName, epoch: actor.epoch }, "actor outcome");
    this.changed(actor);
    this.retire(actor);
    this.pump();
  }

  /** A draining host gives an actor back with a fresh checkpoint: place it elsewhere. */
  onHandoff(fromNodeId: string, actorId: string, epoch: number, checkpoint: Checkpoint): void {
    const moving = this.actors.get(actorId);
    if (moving?.status === "moving" && moving.epoch === epoch && moving.leaving === fromNodeId) {
      // Already on its way (a message found it gone first): take the fresher checkpoint along.
      moving.keep(checkpoint, epoch, true);
      return;
    }
    const actor = this.current(fromNodeId, actorId, epoch);
    if (!actor) return;
    actor.keep(checkpoint, epoch, true);
    this.move(actor, `handed off by draining node ${actor.nodeName}`);
  }

  /** Re-places every actor that lived on a node that is gone. */
  onNodeDown(nodeId: string): void {
    for (const actor of this.actors.values()) {
      if (actor.nodeId !== nodeId || (actor.status !== "running" && actor.status !== "starting")) continue;
      actor.migrations++;
      this.move(actor, `node ${actor.nodeName} is down`);
    }
  }

  /**
   * A link to a host came up (again): the host may be a new life of its node, restarted within
   * the failure detector's window, so never seen down here, with none of the actors placed on
   * its old life. Asks it which of those it still runs and moves the rest, as if it had gone
   * down. Only placements made before `linkOpenedAt` are asked about: a spawn sent over this
   * link may not have reached the host yet.
   */
  async onHostLinked(nodeId: string, linkOpenedAt: number): Promise<void> {
    const asked = [...this.actors.values()].filter((a) => a.nodeId === nodeId && a.status === "running" && a.placedAt < linkOpenedAt);
    if (asked.length === 0) return;
    const epochs = new Map(asked.map((a) => [a, a.epoch]));
    let missing: string[];
    try {
      missing = await this.options.link.holds(nodeId, asked.map((a) => ({ actorId: a.id, epoch: a.epoch })));
    } catch (err) {
      // The link went again: the next one asks, or the node is marked down and its actors move.
      this.log.info({ err, node: asked[0]?.nodeName, actors: asked.length }, "could not ask a host which actors it still runs");
      return;
    }
    const gone = new Set(missing);
    for (const actor of asked) {
      // Still the placement asked about: not ended, moved or placed again meanwhile.
      if (!gone.has(actor.id) || actor.epoch !== epochs.get(actor) || actor.nodeId !== nodeId || actor.status !== "running") continue;
      actor.migrations++;
      // Its new life may run it again: nothing is wrong with the node.
      this.move(actor, `${actor.nodeName} came back without it (restarted)`, { avoid: false });
    }
  }

  /** Membership or load changed: waiting actors may fit now. */
  pump(): void {
    this.queue.pump();
  }

  /** Actors that wait for a slot, in order. */
  pending(): SupervisedActor[] {
    return this.queue.pending();
  }

  private async launch(actor: SupervisedActor, decision: PlacementDecision): Promise<void> {
    const epoch = ++actor.epoch;
    const before = actor.status;
    const migration = actor.status === "moving";
    actor.status = "starting";
    actor.nodeId = decision.nodeId;
    actor.nodeName = decision.nodeName;
    actor.decision = decision;
    actor.waiting = undefined;
    actor.history.push({ node: decision.nodeName, epoch, at: new Date().toISOString(), why: decision.why });
    actor.placements.set(epoch, decision.nodeId);
    actor.placedAt = monotonicNow();
    this.changed(actor);
    this.queue.spawning(decision.nodeId);
    const req: SpawnRequest = {
      actorId: actor.id,
      logic: actor.logic,
      input: actor.input,
      supervisor: this.options.selfId,
      epoch,
      key: actor.key,
      attempt: actor.attempt,
      migration: migration || actor.migrations > 0,
      ...(actor.parent !== undefined && { parent: actor.parent }),
      ...(actor.labels !== undefined && { labels: actor.labels }),
      ...(actor.checkpoint && { checkpoint: actor.restoreFrom() }),
    };
    try {
      await this.options.link.spawn(decision.nodeId, req);
    } catch (err) {
      this.queue.spawned(decision.nodeId);
      if (actor.epoch !== epoch || actor.finished) return;
      const error = isShoalError(err) ? err : new ShoalError("SHOAL_ERR_ACTOR_FAILED", String(err));
      if (error.code === "SHOAL_ERR_OVERLOADED") {
        // At a limit: another node now, or (none left) the actor fails with this.
        this.log.info({ actorId: actor.id, node: decision.nodeName, err: error.message }, "spawn refused by a node at its limit; trying another");
        actor.refusedBy.set(decision.nodeId, error.message);
        actor.status = before;
        actor.nodeId = undefined;
        this.queue.pushFront(actor);
        this.pump();
        return;
      }
      if (RETRY_ELSEWHERE.has(error.code)) {
        this.log.debug({ actorId: actor.id, node: decision.nodeName, code: error.code }, "spawn refused; trying again");
        actor.status = "moving";
        actor.nodeId = undefined;
        if (error.code === "SHOAL_ERR_DRAINING") actor.leaving = decision.nodeId;
        this.queue.pushFront(actor);
        this.retrySoon();
        return;
      }
      actor.end("error", { error });
      this.changed(actor);
      this.retire(actor);
      return;
    }
    this.queue.spawned(decision.nodeId);
    if (actor.epoch !== epoch || actor.finished) return;
    actor.status = "running";
    actor.leaving = undefined;
    actor.refusedBy.clear();
    this.log.info({ actorId: actor.id, logic: actor.logic, node: decision.nodeName, epoch, why: decision.why }, migration ? "actor moved" : "actor placed");
    this.changed(actor);
    this.deliveries.flush(actor);
  }

  /** Places an actor again; unless told otherwise, not on the node it leaves. */
  private move(actor: SupervisedActor, why: string, { avoid = true } = {}): void {
    this.log.warn({ actorId: actor.id, from: actor.nodeName, epoch: actor.epoch, why, checkpoint: actor.checkpoint?.seq ?? null }, "moving actor");
    actor.leaving = avoid ? actor.nodeId : undefined;
    actor.status = "moving";
    actor.nodeId = undefined;
    actor.waiting = why;
    this.queue.pushFront(actor);
    this.changed(actor);
    this.pump();
  }

  /** The actor if the message is from its current placement; otherwise counts it as stale. */
  private current(fromNodeId: string, actorId: string, epoch: number): SupervisedActor | undefined {
    const actor = this.get(actorId);
    if (actor && actor.epoch === epoch && actor.nodeId === fromNodeId && !actor.finished) return actor;
    this.staleMessages++;
    this.log.info({ actorId, epoch, from: fromNodeId, current: actor?.epoch ?? null }, "dropped a message from an old placement");
    if (actor && !actor.finished && actor.nodeId !== fromNodeId) {
      // A copy cut off by a partition is still running there: stop it.
      void this.options.link.stop(fromNodeId, actorId, epoch).catch(() => {});
    }
    return undefined;
  }

  private retrySoon(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
      for (const a of this.actors.values()) if (a.status === "running" && a.buffer.length > 0) this.deliveries.flush(a);
    }, this.options.retryDelayMs ?? 50);
    this.retryTimer.unref();
  }

  private retire(actor: SupervisedActor): void {
    this.actors.delete(actor.id);
    this.finished.set(actor.id, actor);
    setTimeout(() => this.finished.delete(actor.id), this.options.retainFinishedMs ?? 5 * 60_000).unref();
  }

  private require(actorId: string): SupervisedActor {
    const actor = this.get(actorId);
    if (!actor) throw new ShoalError("SHOAL_ERR_UNKNOWN_ACTOR", `no actor ${actorId} supervised by ${this.options.selfName}`);
    return actor;
  }

  private changed(actor: SupervisedActor): void {
    actor.notify();
    this.emit("changed", actor);
  }
}
