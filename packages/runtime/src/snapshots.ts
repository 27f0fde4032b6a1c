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
  return { persisted: actor.getPersistedSnapshot(), timers, seq, takenAt: Date.now() };
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
  if (!update.checkpoint) return update.snapshot;
  const persisted = update.checkpoint.persisted as { value?: unknown; context?: unknown };
  return { status: update.snapshot.status, value: persisted.value, ...(persisted.context !== undefined && { context: persisted.context }) };
}
