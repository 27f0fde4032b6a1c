import type { Member, PlacementDecision, ShoalError } from "@shoal/protocol";
import type { SupervisedActor } from "./SupervisedActor.js";
import { choosePlacement } from "./placement.js";

/** What the queue needs of its supervisor. */
export interface PlacementQueueOptions {
  selfId: string;
  /** The membership, with this node's own record showing its live load. */
  members(): Member[];
  /** The supervisor's actors that have not ended: what they hold counts against each node's slots. */
  active(): Iterable<SupervisedActor>;
  /** A node was chosen: the actor leaves the queue and its spawn goes out. */
  launch(actor: SupervisedActor, decision: PlacementDecision): void;
  /** No node can ever run it: the actor leaves the queue and ends with this error. */
  fail(actor: SupervisedActor, error: ShoalError): void;
  /** It still waits, for a new reason (`actor.waiting`). */
  waiting(actor: SupervisedActor): void;
}

/**
 * The FIFO of actors waiting for a slot, and what a placement pass sees: the membership's load
 * plus the slots this supervisor holds beyond what gossip shows yet (spawns in flight, fresh
 * placements). Many triggers in one turn of the event loop (a burst of outcomes, load updates)
 * lead to one pass.
 */
export class PlacementQueue {
  private readonly queue: SupervisedActor[] = [];
  /** Spawns sent and not yet answered, per node. */
  private readonly inflight = new Map<string, number>();
  private pumpScheduled = false;

  constructor(private readonly options: PlacementQueueOptions) {}

  /** Waits behind the others (a new actor). */
  push(actor: SupervisedActor): void {
    this.queue.push(actor);
    this.pump();
  }

  /** Goes first (an actor that was placed before: moved, refused, or to try again). */
  pushFront(actor: SupervisedActor): void {
    this.queue.unshift(actor);
  }

  remove(actor: SupervisedActor): void {
    const i = this.queue.indexOf(actor);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** Actors that wait for a slot, in order. */
  pending(): SupervisedActor[] {
    return [...this.queue];
  }

  /** A spawn to `nodeId` went out. */
  spawning(nodeId: string): void {
    this.inflight.set(nodeId, (this.inflight.get(nodeId) ?? 0) + 1);
  }

  /** A spawn to `nodeId` was answered (either way). */
  spawned(nodeId: string): void {
    this.inflight.set(nodeId, (this.inflight.get(nodeId) ?? 1) - 1);
  }

  /** Membership or load changed: waiting actors may fit now. One pass per turn of the event loop. */
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
    for (const a of this.options.active()) if (a.nodeId && !a.finished) countOn(sameLogic, a.logic, a.nodeId);
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
          this.options.waiting(actor);
        }
        continue;
      }
      this.remove(actor);
      if (result.kind === "fail") {
        this.options.fail(actor, result.error);
        continue;
      }
      const { decision } = result;
      reserved.set(decision.nodeId, (reserved.get(decision.nodeId) ?? 0) + 1);
      countOn(sameLogic, actor.logic, decision.nodeId);
      this.options.launch(actor, decision);
    }
  }

  /** Slots this supervisor holds per node beyond what gossip shows: in-flight spawns and fresh placements. */
  private reservations(members: Member[]): Map<string, number> {
    const mine = new Map<string, number>();
    for (const a of this.options.active()) {
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
}

/** One more actor of `logic` on `nodeId`, in the per-logic counts the `spread` strategy reads. */
function countOn(sameLogic: Map<string, Map<string, number>>, logic: string, nodeId: string): void {
  const byNode = sameLogic.get(logic) ?? new Map<string, number>();
  byNode.set(nodeId, (byNode.get(nodeId) ?? 0) + 1);
  sameLogic.set(logic, byNode);
}
