import { type ActorUpdate, type Checkpoint, type SnapshotView, type Timer, monotonicNow } from "@shoal/protocol";
import type { AnyActorRef, Snapshot } from "xstate";

/** JSON-safe copy: what crosses the wire must not carry actor refs, functions or cycles. */
export function plain<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

/** The parts of an XState snapshot the API and the supervisor show. */
export function viewOf(snapshot: Snapshot<unknown> & { value?: unknown; context?: unknown }): SnapshotView {
  const view: SnapshotView = { status: snapshot.status };
  if (snapshot.value !== undefined) view.value = plain(snapshot.value);
  if (snapshot.context !== undefined) view.context = plain(snapshot.context);
  if (snapshot.status === "done") view.output = plain(snapshot.output);
  return view;
}

interface ScheduledEvent {
  source: AnyActorRef;
  target: AnyActorRef;
  event: { type: string };
  delay: number;
  id: string;
  /** XState's, from the wall clock. */
  startedAt: number;
  /** Ours, from the monotonic clock: set by `timerClock` as XState arms the event's timer. */
  armedAt?: number;
}

type XStateClock = { setTimeout(fn: (...args: unknown[]) => void, ms: number): unknown; clearTimeout(id: unknown): void };

/**
 * The clock to create a checkpointed machine with: `const actor = createActor(logic, { clock:
 * timerClock(() => actor.system) })`, started once `actor` is assigned. XState stamps a delayed event with the wall clock only, and
 * a checkpoint must say how long each event has left without trusting it: a wall step in between
 * would move the timer on the node that restores it. XState records the event and arms its timer
 * in one synchronous step, so the events not yet stamped when `setTimeout` is called are the one
 * being armed.
 */
export function timerClock(system: () => AnyActorRef["system"]): XStateClock {
  return {
    setTimeout(fn, ms) {
      const now = monotonicNow();
      for (const s of Object.values(system().getSnapshot()._scheduledEvents) as ScheduledEvent[]) s.armedAt ??= now;
      return setTimeout(fn, ms);
    },
    clearTimeout: (id) => clearTimeout(id as NodeJS.Timeout),
  };
}

/** Names an actor ref relative to the root: "" for the root, else the id of a direct child. */
function nameOf(root: AnyActorRef, ref: AnyActorRef): string | undefined {
  if (ref === root) return "";
  const children = (root.getSnapshot() as { children?: Record<string, AnyActorRef> }).children ?? {};
  for (const [id, child] of Object.entries(children)) if (child === ref) return id;
  return undefined;
}

interface MachineSnapshotFields {
  status: string;
  value?: unknown;
  context?: unknown;
  output?: unknown;
  error?: unknown;
  children?: Record<string, unknown>;
  historyValue?: Record<string, unknown>;
}

const isEmpty = (record: Record<string, unknown> | undefined): boolean => {
  for (const _ in record) return false;
  return true;
};

/** Whether plain data holds an actor ref anywhere (what XState's persistContext looks for). */
function holdsActorRef(value: unknown): boolean {
  if (!value || typeof value !== "object") return false;
  if ("sessionId" in value && "send" in value && "ref" in value) return true;
  for (const key in value) if (holdsActorRef((value as Record<string, unknown>)[key])) return true;
  return false;
}

/**
 * XState's persisted snapshot of a machine actor. Its own `getPersistedSnapshot` copies the
 * snapshot through an object rest and rebuilds children and history on every call: a cost every
 * acknowledged event pays, since a checkpoint rides on each answer. A machine with no children, no
 * history and no actor ref in its context persists as exactly these fields, built here directly;
 * any other goes through XState. snapshots.test.ts checks that both restore the same machine.
 */
export function persistedSnapshotOf(actor: AnyActorRef & { getPersistedSnapshot(): unknown }): unknown {
  const s = actor.getSnapshot() as MachineSnapshotFields;
  if (!isEmpty(s.children) || !isEmpty(s.historyValue) || holdsActorRef(s.context)) return actor.getPersistedSnapshot();
  const persisted: MachineSnapshotFields = { status: s.status, value: s.value, historyValue: {}, context: s.context, children: {} };
  if (s.output !== undefined) persisted.output = s.output;
  if (s.error !== undefined) persisted.error = s.error;
  return persisted;
}

/**
 * A checkpoint of a machine actor: XState's persisted snapshot, plus the delayed events it has
 * scheduled, each with the time it has left. XState keeps those in the actor system, not in the
 * persisted snapshot, so a restored machine would silently lose its pending `after` transitions
 * without them.
 */
export function checkpointOf(actor: AnyActorRef & { getPersistedSnapshot(): unknown }, seq: number): Checkpoint {
  const scheduled = Object.values(actor.system.getSnapshot()._scheduledEvents) as ScheduledEvent[];
  const timers: Timer[] = [];
  const now = monotonicNow();
  const wallNow = Date.now();
  for (const s of scheduled) {
    const source = nameOf(actor, s.source);
    const target = nameOf(actor, s.target);
    if (source === undefined || target === undefined) continue; // deeper descendants: not restorable here
    // A machine created without `timerClock` has only XState's wall stamp: bounded by the delay, a step moves it within it.
    const elapsed = s.armedAt !== undefined ? now - s.armedAt : wallNow - s.startedAt;
    timers.push({ id: s.id, source, target, event: plain(s.event), dueInMs: Math.min(s.delay, Math.max(0, s.delay - elapsed)) });
  }
  // XState's persisted snapshot is plain data by contract (refs in context already replaced), so
  // it is not copied here: the codec copies it on the wire, `plain` on the in-process path.
  return { persisted: persistedSnapshotOf(actor), timers, seq };
}

/** The checkpoint as it is `elapsedMs` after it was taken (or received): its timers have that much less left. */
export function agedCheckpoint(checkpoint: Checkpoint, elapsedMs: number): Checkpoint {
  if (checkpoint.timers.length === 0 || elapsedMs <= 0) return checkpoint;
  return { ...checkpoint, timers: checkpoint.timers.map((t) => ({ ...t, dueInMs: Math.max(0, t.dueInMs - elapsedMs) })) };
}

/** Schedules a checkpoint's timers again on a restored actor, for the time they had left. */
export function restoreTimers(actor: AnyActorRef, timers: Timer[]): void {
  const children = (actor.getSnapshot() as { children?: Record<string, AnyActorRef> }).children ?? {};
  const resolve = (name: string) => (name === "" ? actor : children[name]);
  for (const t of timers) {
    const source = resolve(t.source);
    const target = resolve(t.target);
    if (!source || !target) continue;
    actor.system.scheduler.schedule(source, target, t.event, t.dueInMs, t.id);
  }
}

/** The view an update stands for: a machine's value and context come from its checkpoint. */
export function viewOfUpdate(update: ActorUpdate): SnapshotView {
  return update.checkpoint ? viewOfCheckpoint(update.checkpoint, update.snapshot.status) : update.snapshot;
}

/** The view of a running machine as of a checkpoint. */
export function viewOfCheckpoint(checkpoint: Checkpoint, status: SnapshotView["status"] = "active"): SnapshotView {
  const persisted = checkpoint.persisted as { value?: unknown; context?: unknown };
  return { status, value: persisted.value, ...(persisted.context !== undefined && { context: persisted.context }) };
}
