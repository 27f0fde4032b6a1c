import type { Checkpoint, Placement, SnapshotView } from "@shoal/protocol";
import type { ActorLogic, AnyActorRef, EventObject, Snapshot } from "xstate";
import type { ActorRef } from "./ActorRef.js";
import type { SupervisedStatus } from "./SupervisedActor.js";
import type { SpawnOptions } from "./Supervisor.js";

/** The snapshot of a remote child as its parent machine sees it: mirrored from wherever it runs. */
export type RemoteSnapshot = Snapshot<unknown> & {
  input: unknown;
  value?: unknown;
  context?: unknown;
  /** The actor's id in the mesh, once spawned. */
  actorId?: string;
  /** Where it runs now (`node/actorId`), and its runtime status (pending while it waits for a slot). */
  address?: string;
  node?: string;
  placement?: SupervisedStatus;
};

/**
 * With `envelope: true` the child's input carries spawn options for this one run: the step of a
 * workflow passes its idempotency key and attempt this way.
 */
export interface RemoteEnvelope {
  input: unknown;
  key?: string;
  attempt?: number;
  labels?: SpawnOptions["labels"];
  /** A machine child starts from this checkpoint (see SpawnOptions). */
  checkpoint?: Checkpoint;
}

export interface RemoteSpawner {
  spawn(logic: string, input: unknown, options: SpawnOptions): ActorRef;
  /** Where a proxy reports what it cannot hand to its parent as an event (logged once). */
  reportError(err: unknown, context: Record<string, unknown>): void;
}

export interface RemoteLogicOptions {
  placement?: Placement;
  envelope?: boolean;
}

const MIRROR = "shoal.remote.snapshot";
const DONE = "shoal.remote.done";
const ERROR = "shoal.remote.error";

/**
 * XState actor logic that runs `logic` somewhere in the mesh: built the way `fromPromise` is.
 * A parent machine invokes or spawns it like any child; the runtime places and starts the real
 * actor, this proxy mirrors its snapshots, forwards events to it, and ends with its output or
 * error, so XState's own `xstate.done.actor.*` / `xstate.error.actor.*` reach the parent. Moves
 * between nodes happen under it; the parent does not notice.
 */
export function remoteLogic(spawner: RemoteSpawner, logic: string, options: RemoteLogicOptions = {}): ActorLogic<RemoteSnapshot, EventObject, unknown> {
  const refs = new WeakMap<AnyActorRef, ActorRef>();
  return {
    config: { logic, placement: options.placement },
    getInitialSnapshot: (_scope, input) => ({ status: "active", output: undefined, error: undefined, input }),
    start: (state, { self }) => {
      if (state.status !== "active") return;
      const envelope = options.envelope ? (state.input as RemoteEnvelope) : { input: state.input };
      const ref = spawner.spawn(logic, envelope.input, {
        ...(options.placement && { placement: options.placement }),
        parent: self.id,
        ...(envelope.key !== undefined && { key: envelope.key }),
        ...(envelope.attempt !== undefined && { attempt: envelope.attempt }),
        ...(envelope.labels !== undefined && { labels: envelope.labels }),
        ...(envelope.checkpoint !== undefined && { checkpoint: envelope.checkpoint }),
      });
      refs.set(self, ref);
      // Once the parent stopped this proxy, nothing more goes to it.
      const live = () => refs.get(self) === ref;
      const mirror = () => {
        if (!live()) return;
        const record = ref.record;
        self.send({
          type: MIRROR,
          view: ref.getSnapshot(),
          actorId: ref.id,
          address: ref.address,
          node: record?.nodeName,
          placement: record?.status,
        } as EventObject);
      };
      ref.subscribe(mirror);
      mirror();
      ref.done.then(
        (output) => live() && self.send({ type: DONE, output } as EventObject),
        (error: unknown) => live() && self.send({ type: ERROR, error } as EventObject),
      );
    },
    transition: (state, event, { self }) => {
      if (state.status !== "active") return state;
      const e = event as EventObject & { view?: SnapshotView; output?: unknown; error?: unknown } & Partial<RemoteSnapshot>;
      switch (e.type) {
        case MIRROR:
          return {
            ...state,
            value: e.view?.value,
            context: e.view?.context,
            ...(e.actorId !== undefined && { actorId: e.actorId }),
            ...(e.address !== undefined && { address: e.address }),
            ...(e.node !== undefined && { node: e.node }),
            ...(e.placement !== undefined && { placement: e.placement }),
          };
        case DONE:
          return { ...state, status: "done", output: e.output, input: undefined };
        case ERROR:
          return { ...state, status: "error", error: e.error, input: undefined };
        case "xstate.stop":
          void refs.get(self)?.stop().catch((err: unknown) => spawner.reportError(err, { logic, op: "stop" }));
          refs.delete(self);
          return { ...state, status: "stopped", input: undefined };
        default:
          // Events for the child go to wherever it runs.
          void refs.get(self)?.send(e).catch((err: unknown) => spawner.reportError(err, { logic, op: "send", event: e.type }));
          return state;
      }
    },
    getPersistedSnapshot: (state) => state,
    restoreSnapshot: (state) => state as RemoteSnapshot,
  };
}
