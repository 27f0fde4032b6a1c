import type { ActorEvent, SnapshotView } from "@shoal/protocol";
import type { SupervisedActor } from "./SupervisedActor.js";

/** What an ActorRef needs from the runtime: routing by actor id, wherever the actor is. */
export interface ActorRouter {
  send(actorId: string, event: ActorEvent): Promise<void>;
  ask(actorId: string, event: ActorEvent, timeoutMs: number): Promise<SnapshotView>;
  stop(actorId: string): Promise<void>;
}

/**
 * A reference to an actor that works the same whether it runs on this node or another, and
 * keeps working while the actor moves: it routes by the actor's id, never by its address.
 */
export class ActorRef {
  constructor(
    private readonly router: ActorRouter,
    readonly id: string,
    /** Present when this node supervises the actor (it spawned it). */
    private readonly supervised?: SupervisedActor,
  ) {}

  /** `node/actorId` of where it runs now; just the id while unplaced or unknown here. */
  get address(): string {
    const node = this.supervised?.nodeName;
    return node && !this.supervised?.finished ? `${node}/${this.id}` : this.id;
  }

  /** Resolves with the actor's output; rejects with its error or when it is stopped. */
  get done(): Promise<unknown> {
    if (!this.supervised) return Promise.reject(new Error(`ref ${this.id} is not supervised here: no outcome to wait for`));
    return this.supervised.done;
  }

  send(event: ActorEvent): Promise<void> {
    return this.router.send(this.id, event);
  }

  /** Sends an event and resolves with the actor's snapshot right after it. */
  ask(event: ActorEvent, options: { timeoutMs?: number } = {}): Promise<SnapshotView> {
    return this.router.ask(this.id, event, options.timeoutMs ?? 5_000);
  }

  stop(): Promise<void> {
    return this.router.stop(this.id);
  }

  getSnapshot(): SnapshotView | undefined {
    return this.supervised?.view;
  }

  /** Called with every snapshot the actor reports (supervised refs only). */
  subscribe(listener: (view: SnapshotView) => void): () => void {
    if (!this.supervised) throw new Error(`ref ${this.id} is not supervised here: subscribe on the node that spawned it`);
    return this.supervised.subscribe((a) => listener(a.view));
  }

  /** @internal */
  get record(): SupervisedActor | undefined {
    return this.supervised;
  }
}
