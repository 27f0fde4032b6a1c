import { type ActorEvent, type Checkpoint, type HostReply, ShoalError, type SnapshotView, isShoalError, monotonicNow } from "@shoal/protocol";
import type { Delivery, SupervisedActor } from "./SupervisedActor.js";
import { viewOfCheckpoint } from "./snapshots.js";

/** Errors after which a message is kept and sent again once the actor has moved. */
const RETRY_AFTER_MOVE = new Set(["SHOAL_ERR_PEER_CLOSED", "SHOAL_ERR_NOT_CONNECTED", "SHOAL_ERR_UNKNOWN_ACTOR"]);

/** What the buffer needs of its supervisor. */
export interface DeliveryHooks {
  send(nodeId: string, actorId: string, event: ActorEvent): Promise<HostReply>;
  ask(nodeId: string, actorId: string, event: ActorEvent, timeoutMs: number): Promise<HostReply>;
  /** The actor if a reply from `nodeId` at `epoch` comes from its current placement. */
  current(nodeId: string, actorId: string, epoch: number): SupervisedActor | undefined;
  /** Takes a snapshot (and the checkpoint behind it) that a host answered with. */
  mirror(actor: SupervisedActor, view: SnapshotView, checkpoint: Checkpoint | undefined): void;
  /** Places the actor again: its host no longer has it. */
  move(actor: SupervisedActor, why: string): void;
  /** Tries the buffered deliveries again shortly (a dropped link that may come back). */
  retrySoon(): void;
}

/**
 * Events on their way to supervised actors. One to an actor that runs goes out at once; one to
 * an actor that is not placed (or moving) waits in the actor's buffer, in order, and goes out
 * when it runs again; one that met a lost link or a host without the actor waits for the move.
 * An ask ends by its deadline however long it waited.
 */
export class DeliveryBuffer {
  constructor(private readonly hooks: DeliveryHooks) {}

  deliver(actor: SupervisedActor, event: ActorEvent, ask: { timeoutMs: number } | undefined): Promise<SnapshotView | undefined> {
    if (actor.finished) return Promise.reject(new ShoalError("SHOAL_ERR_ACTOR_STOPPED", `actor ${actor.id} has ${actor.status === "done" ? "finished" : "stopped"}`));
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

  /** Sends what waits in the actor's buffer, in order: each waits for the previous, so a move in between keeps the rest queued. */
  flush(actor: SupervisedActor): void {
    const waiting = actor.buffer.splice(0);
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
        ? await this.hooks.ask(nodeId, actor.id, d.event, Math.max(1, Math.round(d.ask.deadline - monotonicNow())))
        : await this.hooks.send(nodeId, actor.id, d.event);
      // The checkpoint that includes the event is applied before the caller hears it was taken.
      if (reply.checkpoint) {
        const view = viewOfCheckpoint(reply.checkpoint);
        const current = this.hooks.current(nodeId, actor.id, epoch);
        if (current) this.hooks.mirror(current, view, reply.checkpoint);
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
          this.hooks.move(actor, `${actor.nodeName} no longer has it`);
        } else {
          // A dropped connection that may come back: try again shortly; a move flushes it too.
          this.hooks.retrySoon();
        }
      } else {
        d.reject(error);
      }
    }
  }
}
