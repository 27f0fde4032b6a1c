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
import { choosePlacement } from "./placement.js";
import { agedCheckpoint, viewOfCheckpoint, viewOfUpdate } from "./snapshots.js";

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

export type SupervisedStatus = "pending" | "starting" | "running" | "moving" | "done" | "error" | "stopped";

interface Delivery {
  event: ActorEvent;
  ask: { timeoutMs: number; deadline: number } | undefined;
  resolve(value: SnapshotView | undefined): void;
  reject(err: ShoalError): void;
  /** Set once the delivery waits in a buffer: an ask must still end by its deadline. */
  timer?: NodeJS.Timeout;
}

/** Errors after which a message is kept and sent again once the actor has moved. */
const RETRY_AFTER_MOVE = new Set(["SHOAL_ERR_PEER_CLOSED", "SHOAL_ERR_NOT_CONNECTED", "SHOAL_ERR_UNKNOWN_ACTOR"]);
/** Spawn failures that say "try another node", not "this can never run". */
const RETRY_ELSEWHERE = new Set(["SHOAL_ERR_NO_SLOT", "SHOAL_ERR_DRAINING", "SHOAL_ERR_PEER_CLOSED", "SHOAL_ERR_NOT_CONNECTED", "SHOAL_ERR_REQUEST_TIMEOUT", "SHOAL_ERR_BACKPRESSURE"]);

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
 * The spawner side of remote actors: a FIFO queue of actors waiting for a slot, placement,
 * and what happens after: snapshots and checkpoints in, one outcome per placement (older epochs
 * fenced off), messages buffered while an actor moves, re-placement when its node goes down.
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  /** Actors not yet ended: every scan (placement, reservations, node loss) walks only these. */
  private readonly actors = new Map<string, SupervisedActor>();
  /** Ended actors, kept for `get` and the API for `retainFinishedMs`. */
  private readonly finished = new Map<string, SupervisedActor>();
  private readonly queue: SupervisedActor[] = [];
  private readonly inflight = new Map<string, number>();
  private readonly log: Logger;
  private retryTimer: NodeJS.Timeout | undefined;
  private pumpScheduled = false;
  private counter = 0;
  /** Updates and outcomes from placements that were already replaced: counted, then dropped. */
  staleMessages = 0;

  constructor(private readonly options: SupervisorOptions) {
    super();
    this.log = options.logger.child({ component: "supervisor" });
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
    this.pump();
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
    return this.deliver(actorId, event, undefined).then(() => undefined);
  }

  /** Delivers an event and resolves with the actor's snapshot right after it. */
  ask(actorId: string, event: ActorEvent, timeoutMs: number): Promise<SnapshotView> {
    return this.deliver(actorId, event, { timeoutMs }) as Promise<SnapshotView>;
  }

  async stop(actorId: string): Promise<void> {
    const actor = this.require(actorId);
    if (actor.finished) return;
    const i = this.queue.indexOf(actor);
    if (i >= 0) this.queue.splice(i, 1);
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

  /**
   * Membership or load changed: waiting actors may fit now. Many triggers in one turn of the
   * event loop (a burst of outcomes, load updates) lead to one placement pass.
   */
  pump(): void {
    if (this.pumpScheduled || this.queue.length === 0) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.place();
    });
  }

  private place(): void {
    if (this.queue.length === 0) return;
    const members = this.options.members();
    const reserved = this.reservations(members);
    const sameLogic = new Map<string, Map<string, number>>();
    for (const a of this.actors.values()) {
      if (!a.nodeId || a.finished) continue;
      const byNode = sameLogic.get(a.logic) ?? new Map<string, number>();
      byNode.set(a.nodeId, (byNode.get(a.nodeId) ?? 0) + 1);
      sameLogic.set(a.logic, byNode);
    }
    for (const actor of [...this.queue]) {
      const result = choosePlacement(members, {
        logic: actor.logic,
        placement: actor.placement,
        selfId: this.options.selfId,
        reserved,
        sameLogic: sameLogic.get(actor.logic) ?? new Map(),
        ...(actor.leaving && { exclude: new Set([actor.leaving]) }),
        ...(actor.refusedBy.size > 0 && { refused: actor.refusedBy }),
      });
      if (result.kind === "wait") {
        if (actor.waiting !== result.why) {
          actor.waiting = result.why;
          this.changed(actor);
        }
        continue;
      }
      this.queue.splice(this.queue.indexOf(actor), 1);
      if (result.kind === "fail") {
        this.log.warn({ actorId: actor.id, logic: actor.logic, err: result.error.message }, "actor cannot be placed");
        actor.end("error", { error: result.error });
        this.changed(actor);
        this.retire(actor);
        continue;
      }
      const { decision } = result;
      reserved.set(decision.nodeId, (reserved.get(decision.nodeId) ?? 0) + 1);
      const byNode = sameLogic.get(actor.logic) ?? new Map<string, number>();
      byNode.set(decision.nodeId, (byNode.get(decision.nodeId) ?? 0) + 1);
      sameLogic.set(actor.logic, byNode);
      void this.launch(actor, decision);
    }
  }

  /** Actors that wait for a slot, in order. */
  pending(): SupervisedActor[] {
    return [...this.queue];
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
    this.inflight.set(decision.nodeId, (this.inflight.get(decision.nodeId) ?? 0) + 1);
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
      this.inflight.set(decision.nodeId, (this.inflight.get(decision.nodeId) ?? 1) - 1);
      if (actor.epoch !== epoch || actor.finished) return;
      const error = isShoalError(err) ? err : new ShoalError("SHOAL_ERR_ACTOR_FAILED", String(err));
      if (error.code === "SHOAL_ERR_OVERLOADED") {
        // At a limit: another node now, or (none left) the actor fails with this.
        this.log.info({ actorId: actor.id, node: decision.nodeName, err: error.message }, "spawn refused by a node at its limit; trying another");
        actor.refusedBy.set(decision.nodeId, error.message);
        actor.status = before;
        actor.nodeId = undefined;
        this.queue.unshift(actor);
        this.pump();
        return;
      }
      if (RETRY_ELSEWHERE.has(error.code)) {
        this.log.debug({ actorId: actor.id, node: decision.nodeName, code: error.code }, "spawn refused; trying again");
        actor.status = "moving";
        actor.nodeId = undefined;
        if (error.code === "SHOAL_ERR_DRAINING") actor.leaving = decision.nodeId;
        this.queue.unshift(actor);
        this.retrySoon();
        return;
      }
      actor.end("error", { error });
      this.changed(actor);
      this.retire(actor);
      return;
    }
    this.inflight.set(decision.nodeId, (this.inflight.get(decision.nodeId) ?? 1) - 1);
    if (actor.epoch !== epoch || actor.finished) return;
    actor.status = "running";
    actor.leaving = undefined;
    actor.refusedBy.clear();
    this.log.info({ actorId: actor.id, logic: actor.logic, node: decision.nodeName, epoch, why: decision.why }, migration ? "actor moved" : "actor placed");
    this.changed(actor);
    this.flushBuffer(actor);
  }

  /** Places an actor again; unless told otherwise, not on the node it leaves. */
  private move(actor: SupervisedActor, why: string, { avoid = true } = {}): void {
    this.log.warn({ actorId: actor.id, from: actor.nodeName, epoch: actor.epoch, why, checkpoint: actor.checkpoint?.seq ?? null }, "moving actor");
    actor.leaving = avoid ? actor.nodeId : undefined;
    actor.status = "moving";
    actor.nodeId = undefined;
    actor.waiting = why;
    this.queue.unshift(actor);
    this.changed(actor);
    this.pump();
  }

  private deliver(actorId: string, event: ActorEvent, ask: { timeoutMs: number } | undefined): Promise<SnapshotView | undefined> {
    const actor = this.require(actorId);
    if (actor.finished) return Promise.reject(new ShoalError("SHOAL_ERR_ACTOR_STOPPED", `actor ${actorId} has ${actor.status === "done" ? "finished" : "stopped"}`));
    return new Promise((resolve, reject) => {
      const delivery: Delivery = {
        event,
        ask: ask && { timeoutMs: ask.timeoutMs, deadline: monotonicNow() + ask.timeoutMs },
        resolve: (v) => {
          clearTimeout(delivery.timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(delivery.timer);
          reject(e);
        },
      };
      // Sent at once, an ask is bounded by its request timeout; only a buffered one needs a timer.
      if (actor.status === "running" && actor.buffer.length === 0) void this.attempt(actor, delivery);
      else this.hold(actor, delivery);
    });
  }

  /** Keeps a delivery until the actor runs again; an ask still fails at its deadline. */
  private hold(actor: SupervisedActor, d: Delivery): void {
    actor.buffer.push(d);
    if (!d.ask || d.timer) return;
    const { timeoutMs, deadline } = d.ask;
    d.timer = setTimeout(
      () => {
        const i = actor.buffer.indexOf(d);
        if (i >= 0) actor.buffer.splice(i, 1);
        d.reject(new ShoalError("SHOAL_ERR_ASK_TIMEOUT", `ask ${d.event.type} to ${actor.id} got no answer within ${timeoutMs} ms`));
      },
      Math.max(0, deadline - monotonicNow()),
    );
  }

  private async attempt(actor: SupervisedActor, d: Delivery): Promise<void> {
    const { nodeId, epoch } = actor;
    if (!nodeId) {
      this.hold(actor, d);
      return;
    }
    try {
      const reply = d.ask
        // What is left of its timeout travels, not the deadline: the host's clock is not ours.
        ? await this.options.link.ask(nodeId, actor.id, d.event, Math.max(1, Math.round(d.ask.deadline - monotonicNow())))
        : await this.options.link.send(nodeId, actor.id, d.event);
      // The checkpoint that includes the event is applied before the caller hears it was taken.
      if (reply.checkpoint) {
        const view = viewOfCheckpoint(reply.checkpoint);
        const current = this.current(nodeId, actor.id, epoch);
        if (current) this.mirror(current, view, reply.checkpoint);
        d.resolve(view);
      } else d.resolve(reply.view);
    } catch (err) {
      const error = isShoalError(err) ? err : new ShoalError("SHOAL_ERR_ACTOR_FAILED", String(err));
      if (error.code === "SHOAL_ERR_REQUEST_TIMEOUT") {
        d.reject(new ShoalError("SHOAL_ERR_ASK_TIMEOUT", `${d.event.type} to ${actor.id} on ${actor.nodeName}: ${error.message}`));
      } else if (RETRY_AFTER_MOVE.has(error.code) && !actor.finished) {
        // The node is going or gone; the event goes out again once the actor runs elsewhere.
        this.hold(actor, d);
        if (error.code === "SHOAL_ERR_UNKNOWN_ACTOR" && actor.status === "running" && actor.epoch === epoch && actor.nodeId === nodeId) {
          // Its host no longer has it (restarted, or froze it for a drain): run it elsewhere.
          actor.migrations++;
          this.move(actor, `${actor.nodeName} no longer has it`);
        } else {
          // A dropped connection that may come back: try again shortly; a move flushes it too.
          this.retrySoon();
        }
      } else {
        d.reject(error);
      }
    }
  }

  private flushBuffer(actor: SupervisedActor): void {
    const waiting = actor.buffer.splice(0);
    // In order: each waits for the previous, so a move in between keeps the rest queued.
    void (async () => {
      for (const d of waiting) {
        if (actor.status !== "running") {
          this.hold(actor, d);
          continue;
        }
        await this.attempt(actor, d);
      }
    })();
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

  /** Slots this supervisor holds per node beyond what gossip shows: in-flight spawns and fresh placements. */
  private reservations(members: Member[]): Map<string, number> {
    const mine = new Map<string, number>();
    for (const a of this.actors.values()) {
      if (a.nodeId && (a.status === "running" || a.status === "starting")) mine.set(a.nodeId, (mine.get(a.nodeId) ?? 0) + 1);
    }
    const reserved = new Map<string, number>();
    for (const m of members) {
      const inflight = this.inflight.get(m.id) ?? 0;
      const running = (mine.get(m.id) ?? 0) - inflight;
      reserved.set(m.id, inflight + Math.max(0, running - m.running));
    }
    return reserved;
  }

  private retrySoon(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
      for (const a of this.actors.values()) if (a.status === "running" && a.buffer.length > 0) this.flushBuffer(a);
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
