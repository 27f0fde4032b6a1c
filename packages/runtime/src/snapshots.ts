import type { ActorUpdate, Checkpoint, SnapshotView, Timer } from "@shoal/protocol";
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
  startedAt: number;
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
 * scheduled. XState keeps those in the actor system, not in the persisted snapshot, so a restored
 * machine would silently lose its pending `after` transitions without them.
 */
export function checkpointOf(actor: AnyActorRef & { getPersistedSnapshot(): unknown }, seq: number): Checkpoint {
  const scheduled = Object.values(actor.system.getSnapshot()._scheduledEvents) as ScheduledEvent[];
  const timers: Timer[] = [];
  for (const s of scheduled) {
    const source = nameOf(actor, s.source);
    const target = nameOf(actor, s.target);
    if (source === undefined || target === undefined) continue; // deeper descendants: not restorable here
    timers.push({ id: s.id, source, target, event: plain(s.event), dueAt: s.startedAt + s.delay });
  }
  // XState's persisted snapshot is plain data by contract (refs in context already replaced), so
  // it is not copied here: the codec copies it on the wire, `plain` on the in-process path.
  return { persisted: persistedSnapshotOf(actor), timers, seq, takenAt: Date.now() };
}

/** Schedules a checkpoint's timers again on a restored actor, for the time they had left. */
export function restoreTimers(actor: AnyActorRef, timers: Timer[], now = Date.now()): void {
  const children = (actor.getSnapshot() as { children?: Record<string, AnyActorRef> }).children ?? {};
  const resolve = (name: string) => (name === "" ? actor : children[name]);
  for (const t of timers) {
    const source = resolve(t.source);
    const target = resolve(t.target);
    if (!source || !target) continue;
    actor.system.scheduler.schedule(source, target, t.event, Math.max(0, t.dueAt - now), t.id);
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
