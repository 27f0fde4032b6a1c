import {
  type ActorDescription,
  type ActorEvent,
  type ActorInspectEvent,
  type ActorOutcome,
  type ActorRow,
  CloseCodes,
  LIMIT_DEFAULTS,
  type Logger,
  type NodeIdentity,
  type PeerRequestInput,
  type PeerMethods,
  type PlacementDecision,
  type PeerResponseBody,
  ShoalError,
  type SnapshotView,
  isShoalError,
} from "@shoal/protocol";
import type { Mesh } from "@shoal/mesh";
import { type Transport, createBackoff } from "@shoal/transport";
import type { ActorLogic, EventObject } from "xstate";
import { ActorHost } from "./ActorHost.js";
import { type ActorSendersView, holdsRefusal, hostRefusal, supervisorRefusal } from "./actorSenders.js";
import { ActorRef, type ActorRouter } from "./ActorRef.js";
import type { LogicRegistry } from "./LogicRegistry.js";
import { type RemoteLogicOptions, type RemoteSnapshot, remoteLogic } from "./remoteLogic.js";
import { plain } from "./snapshots.js";
import type { SupervisedActor, SupervisedStatus } from "./SupervisedActor.js";
import { type HostLink, type SpawnOptions, Supervisor } from "./Supervisor.js";

export interface RuntimeOptions {
  transport: Transport;
  mesh: Mesh;
  registry: LogicRegistry;
  slots: number;
  /**
   * Actors hosted here at most, and actors started through `start` (the API) that this node
   * supervises at most (`--max-actors`, 10,000); both refuse with SHOAL_ERR_OVERLOADED.
   */
  maxActors?: number;
  logger: Logger;
  /** Snapshot and checkpoint updates of a busy actor go out at most this often. */
  updateIntervalMs?: number;
  /** Timeout of host requests other than asks. */
  requestTimeoutMs?: number;
}

/**
 * The actor runtime of one node: an ActorHost for the actors that run here, a Supervisor for
 * the actors spawned from here, and the wiring between them over the mesh. Any actor is reached
 * by its id: `<supervisor node>~<suffix>`; the supervisor knows where it runs now.
 */
export interface RuntimeStats {
  /** Actors running on this node (busy slots). */
  hosted: number;
  /** Actors spawned from this node that wait for a free slot somewhere. */
  pending: number;
  /** Actors spawned from this node, by status. */
  supervised: Record<SupervisedStatus, number>;
  /** Updates and outcomes from replaced placements (older epochs), dropped. */
  staleMessages: number;
}

export class Runtime implements ActorRouter {
  readonly host: ActorHost;
  readonly supervisor: Supervisor;
  private readonly transport: Transport;
  private readonly mesh: Mesh;
  private readonly log: Logger;
  private readonly outcomesInFlight = new Set<Promise<void>>();
  private readonly requestTimeoutMs: number;
  private readonly maxActors: number;

  constructor(options: RuntimeOptions) {
    this.transport = options.transport;
    this.mesh = options.mesh;
    this.log = options.logger.child({ component: "runtime" });
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.maxActors = options.maxActors ?? LIMIT_DEFAULTS["max-actors"];
    this.registry = options.registry;
    const self = this.transport.identity;
    this.host = new ActorHost({
      nodeName: self.name,
      registry: options.registry,
      slots: options.slots,
      maxActors: this.maxActors,
      logger: options.logger,
      ...(options.updateIntervalMs !== undefined && { updateIntervalMs: options.updateIntervalMs }),
    });
    this.supervisor = new Supervisor({ selfId: self.id, selfName: self.name, members: () => this.mesh.table.all(), link: this.link, logger: options.logger });
    this.wireHost();
    this.wireTransport();
    this.mesh.on("down", (m) => {
      // A hung node's connection may still look open: close it so requests to it fail now and
      // are resent once its actors run elsewhere.
      void this.transport.connection(m.id)?.close(CloseCodes.HEARTBEAT_TIMEOUT, "marked down", 0);
      this.supervisor.onNodeDown(m.id);
      const orphans = this.host.stopSupervisedBy(m.id);
      if (orphans > 0) this.log.warn({ node: m.name, orphans }, "stopped actors whose supervisor node is down");
    });
    this.mesh.on("changed", () => this.supervisor.pump());
  }

  /** Spawns an actor of a registered logic on a node chosen by placement. */
  spawn(logic: string, input: unknown, options: SpawnOptions = {}): ActorRef {
    const record = this.supervisor.spawn(logic, input, options);
    return new ActorRef(this, record.id, record);
  }

  /**
   * Spawns like `spawn` for a caller outside the mesh (the API): resolves with the ref once the
   * actor runs or waits in the queue for a slot; rejects when nothing in the mesh can run it
   * (SHOAL_ERR_OVERLOADED when the nodes that could are at their --max-actors, or this node
   * already supervises that many actors).
   */
  async start(logic: string, input: unknown, options: SpawnOptions = {}): Promise<ActorRef> {
    if (this.supervisor.active >= this.maxActors) {
      throw new ShoalError("SHOAL_ERR_OVERLOADED", `${this.transport.identity.name} already supervises ${this.supervisor.active} actors, its maximum (--max-actors ${this.maxActors})`, {
        retryAfterMs: 1_000,
      });
    }
    const ref = this.spawn(logic, input, options);
    const record = ref.record as SupervisedActor;
    const settled = () => record.finished || record.status === "running" || (record.status !== "starting" && record.waiting !== undefined);
    await new Promise<void>((resolve) => {
      const off = record.subscribe(() => {
        if (!settled()) return;
        off();
        resolve();
      });
    });
    if (record.status === "error" || record.status === "stopped") await ref.done;
    return ref;
  }

  /** A reference to any actor in the mesh by id. */
  ref(actorId: string): ActorRef {
    const record = this.supervisor.get(actorId);
    return new ActorRef(this, actorId, record);
  }

  /** XState logic that runs `logic` somewhere in the mesh, for `invoke` or `spawnChild`. */
  remote(logic: string, options: RemoteLogicOptions = {}): ActorLogic<RemoteSnapshot, EventObject, unknown> {
    return remoteLogic({ spawn: (l, input, o) => this.spawn(l, input, o), reportError: (err, ctx) => this.log.warn({ err, ...ctx }, "remote child proxy could not deliver") }, logic, options);
  }

  send(actorId: string, event: ActorEvent): Promise<void> {
    if (this.supervisor.get(actorId)) return this.supervisor.send(actorId, event);
    return this.viaSupervisor(actorId, "actor.send", { actorId, event }).then(() => undefined);
  }

  ask(actorId: string, event: ActorEvent, timeoutMs: number): Promise<SnapshotView> {
    if (this.supervisor.get(actorId)) return this.supervisor.ask(actorId, event, timeoutMs);
    return this.viaSupervisor(actorId, "actor.ask", { actorId, event, timeoutMs }, timeoutMs + 1_000);
  }

  stop(actorId: string): Promise<void> {
    if (this.supervisor.get(actorId)) return this.supervisor.stop(actorId);
    return this.viaSupervisor(actorId, "actor.stop", { actorId }).then(() => undefined);
  }

  /** Where an actor runs and how it got there, asked of its supervisor. */
  async describe(actorId: string): Promise<ActorDescription> {
    const record = this.supervisor.get(actorId);
    if (record) return describe(record);
    return this.viaSupervisor(actorId, "actor.get", { actorId });
  }

  readonly registry: LogicRegistry;

  /** Actors running on this node. */
  list(): ActorRow[] {
    return this.host.list();
  }

  /** XState inspection events of every actor hosted here, JSON-safe. */
  inspect(listener: (record: ActorInspectEvent) => void): () => void {
    this.host.on("inspect", listener);
    return () => this.host.off("inspect", listener);
  }

  /** Calls `listener` whenever an actor spawned from here is placed, moves or ends; returns how to stop. */
  onPlacement(listener: (actor: SupervisedActor) => void): () => void {
    this.supervisor.on("changed", listener);
    return () => this.supervisor.off("changed", listener);
  }

  /**
   * Where an actor spawned from here was placed and why (`placed`: it runs there, or ended
   * there), or why it still waits; undefined for an actor this node does not supervise (or
   * no longer remembers).
   */
  placementOf(actorId: string): { decision: PlacementDecision | undefined; placed: boolean; waiting: string | undefined } | undefined {
    const actor = this.supervisor.get(actorId);
    if (!actor) return undefined;
    return { decision: actor.decision, placed: actor.status === "running" || actor.status === "starting" || actor.finished, waiting: actor.waiting };
  }

  /** What this node's actors amount to, for its metrics. */
  get stats(): RuntimeStats {
    const supervised: Record<SupervisedStatus, number> = { pending: 0, starting: 0, running: 0, moving: 0, done: 0, error: 0, stopped: 0 };
    for (const a of this.supervisor.all()) supervised[a.status]++;
    return { hosted: this.host.running, pending: this.supervisor.pending().length, supervised, staleMessages: this.supervisor.staleMessages };
  }

  /**
   * Drain before shutdown: take no new actors (slots 0 in membership), hand every machine actor
   * back to its supervisor with a fresh checkpoint to run elsewhere, let promise actors finish
   * for up to `graceMs`, and wait for their outcomes to be delivered.
   */
  async drain(graceMs: number): Promise<{ handedOff: number; abandoned: number }> {
    this.host.startDraining();
    this.mesh.setSlots(0);
    let handedOff = 0;
    for (const { actorId, supervisor, epoch } of this.host.machines()) {
      const checkpoint = this.host.freeze(actorId);
      if (!checkpoint) continue; // it stays until the drain ends, then its supervisor moves it
      try {
        if (supervisor === this.transport.identity.id) this.supervisor.onHandoff(supervisor, actorId, epoch, plain(checkpoint));
        else await this.transport.request(supervisor, "sup.handoff", { actorId, epoch, checkpoint }, { timeoutMs: this.requestTimeoutMs });
        handedOff++;
      } catch (err) {
        // Its supervisor will move it from the last checkpoint it has when this node is gone.
        this.log.warn({ err, actorId }, "handoff failed");
      }
    }
    const abandoned = await this.host.settle(graceMs);
    await Promise.race([Promise.allSettled([...this.outcomesInFlight]), new Promise((r) => setTimeout(r, graceMs).unref())]);
    this.log.info({ handedOff, abandoned }, "drained");
    return { handedOff, abandoned };
  }

  private readonly link: HostLink = {
    spawn: (nodeId, req) =>
      nodeId === this.transport.identity.id
        ? nextTurn(() => this.host.spawn(structuredClone(req)))
        : this.transport.request(nodeId, "host.spawn", req, { timeoutMs: this.requestTimeoutMs }),
    send: (nodeId, actorId, event) =>
      nodeId === this.transport.identity.id
        ? nextTurn(() => plain(this.host.send(actorId, structuredClone(event))))
        : this.transport.request(nodeId, "host.send", { actorId, event }, { timeoutMs: this.requestTimeoutMs }),
    ask: (nodeId, actorId, event, timeoutMs) =>
      nodeId === this.transport.identity.id
        ? nextTurn(() => plain(this.host.ask(actorId, structuredClone(event))))
        : this.transport.request(nodeId, "host.ask", { actorId, event, timeoutMs }, { timeoutMs }),
    stop: (nodeId, actorId, epoch) =>
      nodeId === this.transport.identity.id
        ? nextTurn(() => void this.host.stop(actorId, epoch))
        : this.transport.request(nodeId, "host.stop", { actorId, epoch }, { timeoutMs: this.requestTimeoutMs }).then(() => undefined),
    holds: (nodeId, actors) =>
      nodeId === this.transport.identity.id
        ? nextTurn(() => this.host.missing(nodeId, actors))
        : this.transport.request(nodeId, "host.holds", { actors }, { timeoutMs: this.requestTimeoutMs }).then((r) => r.missing),
  };

  private wireHost(): void {
    const selfId = this.transport.identity.id;
    this.host.on("update", (supervisorId, update) => {
      if (supervisorId === selfId) return this.supervisor.onUpdate(selfId, plain(update));
      try {
        // Droppable: the next update replaces it, and the outcome is sent reliably anyway.
        this.transport.cast(supervisorId, "sup.update", update, { droppable: true });
      } catch (err) {
        this.log.debug({ err, actorId: update.actorId }, "update not sent; its supervisor is unreachable");
      }
    });
    this.host.on("outcome", (supervisorId, outcome) => {
      const delivery = this.deliverOutcome(supervisorId, outcome).finally(() => this.outcomesInFlight.delete(delivery));
      this.outcomesInFlight.add(delivery);
    });
    this.host.on("running", (n) => {
      this.mesh.setRunning(n);
      this.supervisor.pump();
    });
  }

  /** Sends an outcome until its supervisor acknowledges it, or its node is down. */
  private async deliverOutcome(supervisorId: string, outcome: ActorOutcome): Promise<void> {
    if (supervisorId === this.transport.identity.id) return nextTurn(() => this.supervisor.onOutcome(supervisorId, structuredClone(outcome)));
    const backoff = createBackoff({ initialMs: 50, maxMs: 2_000 });
    for (;;) {
      try {
        await this.transport.request(supervisorId, "sup.outcome", outcome, { timeoutMs: this.requestTimeoutMs });
        return;
      } catch (err) {
        const member = this.mesh.member(supervisorId);
        if (!member || member.status === "down") {
          this.log.warn({ actorId: outcome.actorId, status: outcome.status }, "outcome lost: the supervisor's node is down");
          return;
        }
        this.log.debug({ err, actorId: outcome.actorId }, "outcome not delivered yet; retrying");
        await new Promise((r) => setTimeout(r, backoff.next()));
      }
    }
  }

  private wireTransport(): void {
    const t = this.transport;
    // What the sender rules of host.* and sup.* read: who placed what here, and where.
    const view: ActorSendersView = {
      selfName: t.identity.name,
      hostedFor: (actorId) => this.host.supervisorOf(actorId),
      placedAt: (actorId, epoch) => {
        const actor = this.supervisor.get(actorId);
        return actor ? (actor.placements.get(epoch) ?? null) : undefined;
      },
    };
    const fromSupervisor = (body: { actorId: string; supervisor?: string }, from: NodeIdentity) => supervisorRefusal(view, body, from);
    const fromHost = (body: { actorId: string; epoch: number }, from: NodeIdentity) => hostRefusal(view, body, from);
    t.handle("host.spawn", (body) => this.host.spawn(body), fromSupervisor);
    t.handle("host.send", ({ actorId, event }) => this.host.send(actorId, event), fromSupervisor);
    t.handle("host.ask", ({ actorId, event }) => this.host.ask(actorId, event), fromSupervisor);
    t.handle("host.stop", ({ actorId, epoch }) => this.host.stop(actorId, epoch), fromSupervisor);
    t.handle("host.holds", ({ actors }, from) => ({ missing: this.host.missing(from.id, actors) }), holdsRefusal);
    t.on("connected", (conn) => void this.supervisor.onHostLinked(conn.peer.id, conn.openedAt));
    t.handleCast("sup.update", (body, from) => this.supervisor.onUpdate(from.id, body), fromHost);
    t.handle(
      "sup.outcome",
      (body, from) => {
        this.supervisor.onOutcome(from.id, body);
        return null;
      },
      fromHost,
    );
    t.handle(
      "sup.handoff",
      ({ actorId, epoch, checkpoint }, from) => {
        this.supervisor.onHandoff(from.id, actorId, epoch, checkpoint);
        return null;
      },
      fromHost,
    );
    // Entry points for any node: the supervisor routes to wherever the actor runs.
    t.handle("actor.send", async ({ actorId, event }) => {
      await this.supervisor.send(actorId, event);
      return null;
    });
    t.handle("actor.ask", ({ actorId, event, timeoutMs }) => this.supervisor.ask(actorId, event, timeoutMs));
    t.handle("actor.stop", async ({ actorId }) => {
      await this.supervisor.stop(actorId);
      return null;
    });
    t.handle("actor.get", ({ actorId }) => {
      const record = this.supervisor.get(actorId);
      if (!record) throw new ShoalError("SHOAL_ERR_UNKNOWN_ACTOR", `no actor ${actorId} supervised by ${this.transport.identity.name}`);
      return describe(record);
    });
  }

  /** Sends an actor request to the node that supervises it (named in the actor's id). */
  private async viaSupervisor<K extends "actor.send" | "actor.ask" | "actor.stop" | "actor.get">(
    actorId: string,
    method: K,
    body: PeerRequestInput<PeerMethods, K>,
    timeoutMs = this.requestTimeoutMs,
  ): Promise<PeerResponseBody<PeerMethods, K>> {
    const name = actorId.split("~")[0];
    const self = this.transport.identity;
    if (!actorId.includes("~") || name === self.name) throw new ShoalError("SHOAL_ERR_UNKNOWN_ACTOR", `no actor ${actorId} supervised by ${self.name}`);
    const member = this.mesh.table.all().find((m) => m.name === name && m.status !== "down");
    if (!member) throw new ShoalError("SHOAL_ERR_UNKNOWN_ACTOR", `actor ${actorId}: its supervisor ${name} is not in the mesh`);
    try {
      return await this.transport.request(member.id, method, body, { timeoutMs });
    } catch (err) {
      if (isShoalError(err, "SHOAL_ERR_REQUEST_TIMEOUT")) throw new ShoalError("SHOAL_ERR_ASK_TIMEOUT", err.message);
      throw err;
    }
  }
}

/**
 * Runs `fn` on a later turn of the event loop. Local hand-offs (spawn, outcome) go through here
 * so that a chain of local steps cannot keep the loop in microtasks and starve sockets, timers
 * and heartbeats.
 */
function nextTurn<T>(fn: () => T): Promise<T> {
  return new Promise((resolve, reject) =>
    setImmediate(() => {
      try {
        resolve(fn());
      } catch (err) {
        reject(err);
      }
    }),
  );
}

function describe(a: SupervisedActor): ActorDescription {
  return {
    id: a.id,
    logic: a.logic,
    status: a.status,
    node: a.nodeName ?? null,
    address: a.nodeName && !a.finished ? `${a.nodeName}/${a.id}` : a.id,
    epoch: a.epoch,
    attempt: a.attempt,
    migrations: a.migrations,
    snapshot: a.view,
    placement: a.decision ?? null,
    waiting: a.waiting ?? null,
    history: a.history,
    ...(a.status === "done" && { output: a.view.output }),
  };
}
