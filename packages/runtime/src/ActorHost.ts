import { EventEmitter } from "node:events";
import {
  type ActorEvent,
  type ActorInspectEvent,
  type ActorOutcome,
  type ActorRow,
  type ActorUpdate,
  type Checkpoint,
  type ErrorBody,
  type HostReply,
  LIMIT_DEFAULTS,
  type Logger,
  ShoalError,
  type SnapshotView,
  type SpawnRequest,
  errorBodyOf,
  monotonicNow,
} from "@shoal/protocol";
import { type AnyActor, type InspectionEvent, createActor, fromPromise } from "xstate";
import { isAgent } from "@shoal/tools";
import type { HostedLogic, LogicRegistry } from "./LogicRegistry.js";
import { checkpointOf, plain, restoreTimers, timerClock, viewOf } from "./snapshots.js";

export interface ActorHostEvents {
  /** The latest snapshot and checkpoint of an actor, for its supervisor; coalesced. */
  update: [supervisorId: string, update: ActorUpdate];
  /** The one outcome of a placement: done, error, or stopped by itself. */
  outcome: [supervisorId: string, outcome: ActorOutcome];
  /** The number of busy slots changed. */
  running: [count: number];
  inspect: [record: ActorInspectEvent];
}

export interface ActorHostOptions {
  nodeName: string;
  registry: LogicRegistry;
  slots: number;
  /** Actors hosted here at most (`--max-actors`, 10,000); only bites when `slots` is larger. */
  maxActors?: number;
  logger: Logger;
  /** Snapshots of a busy actor are sent at most this often. */
  updateIntervalMs?: number;
}

interface Hosted {
  req: SpawnRequest;
  logic: HostedLogic;
  actor: AnyActor;
  since: number;
  seq: number;
  flushTimer: NodeJS.Timeout | undefined;
  /** While an event from the supervisor is processed: its answer carries the checkpoint, no timer needed. */
  delivering: boolean;
  /** Set once its outcome is out, or it was handed off or abandoned: no more updates. */
  ended: boolean;
  /** Set once a checkpoint failed (and was logged): later failures are not logged again. */
  uncheckpointable: boolean;
  /** Its inspection feed, attached when a listener came after the actor started. */
  inspection: { unsubscribe(): void } | undefined;
  /** Created with XState's `inspect` option (a listener was there): it reports for its whole life. */
  inspectedFromStart: boolean;
}

/**
 * Runs actors on this node for supervisors anywhere in the mesh: XState machines restored from
 * checkpoints, promise (tool) actors run with their idempotency key. Takes at most `slots`
 * actors (SHOAL_ERR_NO_SLOT: wait) and never more than `maxActors` (SHOAL_ERR_OVERLOADED: go
 * elsewhere); reports snapshots and checkpoints, then one outcome, to each actor's supervisor.
 */
export class ActorHost extends EventEmitter<ActorHostEvents> {
  private readonly actors = new Map<string, Hosted>();
  private readonly log: Logger;
  private draining = false;
  slots: number;

  constructor(private readonly options: ActorHostOptions) {
    super();
    this.slots = options.slots;
    this.log = options.logger.child({ component: "host" });
    // Inspection follows its listeners: attached to running actors when the first one comes,
    // detached when the last one goes.
    const self = this as unknown as NodeJS.EventEmitter;
    self.on("newListener", (name: string | symbol) => {
      if (name !== "inspect" || this.listenerCount("inspect") > 0) return;
      for (const h of this.actors.values()) {
        if (!h.inspectedFromStart) h.inspection ??= h.actor.system.inspect((event) => this.inspect(h.req, event));
      }
    });
    self.on("removeListener", (name: string | symbol) => {
      if (name !== "inspect" || this.listenerCount("inspect") > 0) return;
      for (const h of this.actors.values()) {
        h.inspection?.unsubscribe();
        h.inspection = undefined;
      }
    });
  }

  get running(): number {
    return this.actors.size;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Starts an actor, or answers again for one already started by this same request. */
  spawn(req: SpawnRequest): { node: string; since: number } {
    const existing = this.actors.get(req.actorId);
    if (existing && existing.req.epoch === req.epoch) return { node: this.options.nodeName, since: existing.since };
    if (existing) this.end(existing, "superseded by a newer placement");
    if (this.draining) throw new ShoalError("SHOAL_ERR_DRAINING", `${this.options.nodeName} is draining and takes no new actors`);
    if (this.actors.size >= this.slots) {
      throw new ShoalError("SHOAL_ERR_NO_SLOT", `${this.options.nodeName} has all ${this.slots} slots busy`);
    }
    const maxActors = this.options.maxActors ?? LIMIT_DEFAULTS["max-actors"];
    if (this.actors.size >= maxActors) {
      // Not "wait for a slot": its supervisor places the actor elsewhere, or reports this.
      throw new ShoalError("SHOAL_ERR_OVERLOADED", `${this.options.nodeName} hosts ${this.actors.size} actors, its maximum (--max-actors ${maxActors})`, { retryAfterMs: 1_000 });
    }
    const logic = this.options.registry.get(req.logic);
    const input = this.options.registry.checkInput(logic, req.input);
    const hosted = this.start(req, logic, input);
    this.log.info({ actorId: req.actorId, logic: req.logic, epoch: req.epoch, attempt: req.attempt, migration: req.migration, restored: req.checkpoint !== undefined }, "actor started");
    this.emit("running", this.actors.size);
    return { node: this.options.nodeName, since: hosted.since };
  }

  /**
   * Delivers an event and answers with the checkpoint it led to, for the caller to hand to the
   * supervisor with its answer; none when the event ended the actor (its outcome follows) or the
   * actor is not a machine.
   */
  send(actorId: string, event: ActorEvent): HostReply {
    return this.deliver(this.live(actorId), event);
  }

  /** Delivers an event and answers with the checkpoint it led to, or else the snapshot right after it. */
  ask(actorId: string, event: ActorEvent): HostReply {
    const hosted = this.live(actorId);
    const reply = this.deliver(hosted, event);
    return reply.checkpoint ? reply : { view: viewOf(hosted.actor.getSnapshot()) };
  }

  /** The supervisor's node id of an actor hosted here, if one is. */
  supervisorOf(actorId: string): string | undefined {
    return this.actors.get(actorId)?.req.supervisor;
  }

  view(actorId: string): SnapshotView {
    const hosted = this.actors.get(actorId);
    if (!hosted) throw new ShoalError("SHOAL_ERR_UNKNOWN_ACTOR", `no actor ${actorId} on ${this.options.nodeName}`);
    return viewOf(hosted.actor.getSnapshot());
  }

  /** Of these placements, the ids that do not run here at that epoch for `supervisorId`. */
  missing(supervisorId: string, placements: { actorId: string; epoch: number }[]): string[] {
    return placements
      .filter(({ actorId, epoch }) => {
        const hosted = this.actors.get(actorId);
        return !hosted || hosted.req.epoch !== epoch || hosted.req.supervisor !== supervisorId;
      })
      .map((p) => p.actorId);
  }

  /** Stops an actor (of that placement, when `epoch` is given) without reporting an outcome. */
  stop(actorId: string, epoch?: number): boolean {
    const hosted = this.actors.get(actorId);
    if (!hosted || (epoch !== undefined && hosted.req.epoch !== epoch)) return false;
    this.end(hosted, "stopped by its supervisor");
    return true;
  }

  /** Stops every actor a supervisor node started: it is gone, nobody would hear their outcome. */
  stopSupervisedBy(supervisorId: string): number {
    let n = 0;
    for (const hosted of [...this.actors.values()]) {
      if (hosted.req.supervisor !== supervisorId) continue;
      this.end(hosted, "its supervisor's node is down");
      n++;
    }
    return n;
  }

  /** Stops taking new actors (drain). */
  startDraining(): void {
    this.draining = true;
  }

  /** Machine actors and their supervisors, for a drain to hand back. */
  machines(): { actorId: string; supervisor: string; epoch: number }[] {
    return [...this.actors.values()]
      .filter((h) => isAgent(h.logic) && !h.ended)
      .map((h) => ({ actorId: h.req.actorId, supervisor: h.req.supervisor, epoch: h.req.epoch }));
  }

  /**
   * Takes a final checkpoint and stops the actor without an outcome: it continues elsewhere. An
   * actor that cannot be checkpointed is left running (undefined).
   */
  freeze(actorId: string): Checkpoint | undefined {
    const hosted = this.live(actorId);
    const checkpoint = this.checkpoint(hosted);
    if (checkpoint) this.end(hosted, "handed off");
    return checkpoint;
  }

  /** Resolves when no actor is left, or after `graceMs`; then stops the rest without outcomes. */
  async settle(graceMs: number): Promise<number> {
    const end = monotonicNow() + graceMs;
    while (this.actors.size > 0 && monotonicNow() < end) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(1, end - monotonicNow()));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.once("running", done);
      });
    }
    const left = this.actors.size;
    for (const hosted of [...this.actors.values()]) this.end(hosted, "abandoned at the end of a drain");
    return left;
  }

  list(): ActorRow[] {
    return [...this.actors.values()].map((h) => {
      const snap = h.actor.getSnapshot() as { value?: unknown; status: string };
      return {
        id: h.req.actorId,
        address: `${this.options.nodeName}/${h.req.actorId}`,
        logic: h.req.logic,
        kind: isAgent(h.logic) ? "machine" : "promise",
        state: isAgent(h.logic) ? plain(snap.value) : snap.status,
        status: snap.status,
        parent: h.req.parent ?? null,
        supervisor: h.req.supervisor,
        epoch: h.req.epoch,
        attempt: h.req.attempt,
        since: new Date(h.since).toISOString(),
      };
    });
  }

  private start(req: SpawnRequest, logic: HostedLogic, input: unknown): Hosted {
    const log = this.log.child({ actorId: req.actorId, logic: req.logic });
    const actorLogic = isAgent(logic)
        ? logic.machine
        : fromPromise(async ({ input: i, signal }) => {
            const output = await logic.run(i, {
              node: this.options.nodeName,
              actorId: req.actorId,
              key: req.key,
              attempt: req.attempt,
              migration: req.migration,
              signal,
              log,
              ...(req.labels?.workflowId !== undefined && { workflowId: req.labels.workflowId }),
              ...(req.labels?.stepId !== undefined && { stepId: req.labels.stepId }),
            });
            return checkOutput(logic, output);
          });
    const actor: AnyActor = createActor(actorLogic, {
      input,
      clock: timerClock(() => actor.system),
      ...(req.checkpoint && isAgent(logic) && { snapshot: req.checkpoint.persisted as never }),
      // XState's inspection costs a few µs per event: only while someone listens (see constructor).
      ...(this.listenerCount("inspect") > 0 && { inspect: (event: InspectionEvent) => this.inspect(req, event) }),
    });
    const hosted: Hosted = {
      req,
      logic,
      actor,
      since: Date.now(), // wall time, for people (`list`)
      seq: req.checkpoint?.seq ?? 0,
      flushTimer: undefined,
      delivering: false,
      ended: false,
      uncheckpointable: false,
      inspection: undefined,
      inspectedFromStart: this.listenerCount("inspect") > 0,
    };
    this.actors.set(req.actorId, hosted);
    actor.subscribe({
      next: (snapshot) => {
        if (snapshot.status === "active") this.scheduleFlush(hosted);
        else if (snapshot.status === "done") this.finish(hosted, { status: "done", output: plain(snapshot.output) });
      },
      error: (err) => this.finish(hosted, { status: "error", error: errorBody(err) }),
    });
    actor.start();
    if (req.checkpoint && isAgent(logic)) restoreTimers(actor, req.checkpoint.timers);
    this.flush(hosted);
    return hosted;
  }

  private deliver(hosted: Hosted, event: ActorEvent): HostReply {
    if (!isAgent(hosted.logic)) {
      hosted.actor.send(event);
      return {};
    }
    hosted.delivering = true;
    try {
      hosted.actor.send(event);
    } finally {
      hosted.delivering = false;
    }
    if (hosted.ended || hosted.actor.getSnapshot().status !== "active") return {};
    const checkpoint = this.checkpoint(hosted);
    if (!checkpoint) {
      this.scheduleFlush(hosted); // its snapshot still goes to the supervisor, coalesced
      return {};
    }
    // This checkpoint also covers a coalesced update still due for earlier transitions.
    this.cancelFlush(hosted);
    return { checkpoint };
  }

  /**
   * The actor's checkpoint, or none when XState cannot persist it (a child spawned from inline
   * logic rather than by name, for one). Such an actor keeps running and reporting its snapshot;
   * if its node goes down, it starts again from the last checkpoint its supervisor has.
   */
  private checkpoint(hosted: Hosted): Checkpoint | undefined {
    try {
      const checkpoint = checkpointOf(hosted.actor, hosted.seq + 1);
      hosted.seq++;
      return checkpoint;
    } catch (err) {
      if (!hosted.uncheckpointable) {
        hosted.uncheckpointable = true;
        this.log.warn({ actorId: hosted.req.actorId, logic: hosted.req.logic, err: (err as Error)?.message ?? String(err) }, "actor cannot be checkpointed; if its node goes down it starts again from its last checkpoint");
      }
      return undefined;
    }
  }

  private live(actorId: string): Hosted {
    const hosted = this.actors.get(actorId);
    if (!hosted) throw new ShoalError("SHOAL_ERR_UNKNOWN_ACTOR", `no actor ${actorId} on ${this.options.nodeName}`);
    if (hosted.ended || hosted.actor.getSnapshot().status !== "active") {
      throw new ShoalError("SHOAL_ERR_ACTOR_STOPPED", `actor ${actorId} has ${hosted.actor.getSnapshot().status === "done" ? "finished" : "stopped"}`);
    }
    return hosted;
  }

  private scheduleFlush(hosted: Hosted): void {
    if (hosted.flushTimer || hosted.delivering || hosted.ended) return;
    hosted.flushTimer = setTimeout(() => this.flush(hosted), this.options.updateIntervalMs ?? 10);
  }

  /** Sends the actor's current snapshot and checkpoint to its supervisor now. */
  private flush(hosted: Hosted): void {
    const update = this.takeUpdate(hosted);
    if (update) this.emit("update", hosted.req.supervisor, update);
  }

  /** The actor's current snapshot and checkpoint; a pending coalesced update is no longer needed. */
  private takeUpdate(hosted: Hosted): ActorUpdate | undefined {
    this.cancelFlush(hosted);
    if (hosted.ended) return undefined;
    const snapshot = hosted.actor.getSnapshot();
    if (snapshot.status !== "active") return undefined;
    const checkpoint = isAgent(hosted.logic) ? this.checkpoint(hosted) : undefined;
    if (!checkpoint) return { actorId: hosted.req.actorId, epoch: hosted.req.epoch, snapshot: viewOf(snapshot) };
    // The checkpoint holds value and context; the snapshot says only the status (see ActorUpdateSchema).
    return { actorId: hosted.req.actorId, epoch: hosted.req.epoch, snapshot: { status: "active" }, checkpoint };
  }

  private cancelFlush(hosted: Hosted): void {
    clearTimeout(hosted.flushTimer);
    hosted.flushTimer = undefined;
  }

  private finish(hosted: Hosted, result: Pick<ActorOutcome, "status" | "output" | "error">): void {
    if (hosted.ended) return;
    hosted.ended = true;
    this.cancelFlush(hosted);
    this.actors.delete(hosted.req.actorId);
    const outcome: ActorOutcome = { actorId: hosted.req.actorId, epoch: hosted.req.epoch, ...result };
    this.log.info({ actorId: hosted.req.actorId, status: result.status, error: result.error }, "actor finished");
    this.emit("outcome", hosted.req.supervisor, outcome);
    this.emit("running", this.actors.size);
  }

  /** Stops an actor with no outcome: whoever stopped it knows. */
  private end(hosted: Hosted, why: string): void {
    if (hosted.ended) return;
    hosted.ended = true;
    this.cancelFlush(hosted);
    this.actors.delete(hosted.req.actorId);
    hosted.actor.stop();
    this.log.info({ actorId: hosted.req.actorId, epoch: hosted.req.epoch, why }, "actor stopped");
    this.emit("running", this.actors.size);
  }

  private inspect(req: SpawnRequest, event: InspectionEvent): void {
    if (this.listenerCount("inspect") === 0) return;
    const workflowId = req.labels?.workflowId;
    const record: ActorInspectEvent = {
      kind: "actor",
      type: event.type,
      node: this.options.nodeName,
      actorId: req.actorId,
      sessionId: event.actorRef.sessionId,
      at: Date.now(),
      ...(workflowId !== undefined && { workflowId }),
    };
    if (event.type === "@xstate.event") record.event = plain(event.event);
    if (event.type === "@xstate.snapshot") record.snapshot = viewOf(event.snapshot as never);
    this.emit("inspect", record);
  }
}

function checkOutput(logic: HostedLogic, output: unknown): unknown {
  if (isAgent(logic) || !logic.output) return output;
  const parsed = logic.output.safeParse(output);
  if (parsed.success) return parsed.data;
  throw new ShoalError("SHOAL_ERR_BAD_OUTPUT", `output of ${logic.name} does not match its schema: ${parsed.error.issues[0]?.message ?? "invalid"}`);
}

function errorBody(err: unknown): ErrorBody {
  return errorBodyOf(err, "SHOAL_ERR_ACTOR_FAILED");
}
