import type { InspectEvent, NodeRow, SnapshotView, WorkflowState } from "@shoal/protocol";

export interface WorkflowEntry {
  id: string;
  name: string;
  status: string;
  owner: string;
  startedAt: string;
  progress: { done: number; total: number };
  state?: WorkflowState;
  /** Every state recorded while this page watched, for the timeline. */
  history: { at: number; state: WorkflowState }[];
}

export interface ActorEntry {
  id: string;
  logic?: string;
  host: string | null;
  status: string;
  epoch: number;
  why: string | null;
  workflowId?: string;
  snapshot?: SnapshotView;
  /** Hosts it lived on, in order: a migration adds one. */
  hosts: { node: string; epoch: number }[];
  log: { at: number; node: string; type: string; text: string }[];
}

const MAX_LOG = 500;
const MAX_HISTORY = 2_000;

/** Everything the page knows, fed by the inspection stream; views re-render once per frame. */
export class Store {
  self = "";
  readonly nodes = new Map<string, NodeRow>();
  readonly workflows = new Map<string, WorkflowEntry>();
  readonly actors = new Map<string, ActorEntry>();
  dropped = 0;
  eventsSeen = 0;
  /** Workflows whose view was opened: only these record a history for the timeline. */
  readonly watched = new Set<string>();
  /** Kinds of event applied since the last render, so a view redraws only for what it shows. */
  dirty = new Set<InspectEvent["kind"] | "load">();
  private readonly listeners = new Set<() => void>();
  private scheduled = false;

  onChange(fn: () => void): void {
    this.listeners.add(fn);
  }

  /** Batches re-renders: one per animation frame however many events arrived. */
  changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      for (const fn of this.listeners) fn();
    });
  }

  apply(events: InspectEvent[]): void {
    this.eventsSeen += events.length;
    for (const e of events) {
      this.dirty.add(e.kind);
      switch (e.kind) {
        case "member":
          // The mesh as the node this page talks to sees it.
          if (e.node === this.self || this.self === "") this.nodes.set(e.member.name, e.member);
          break;
        case "workflow":
          this.workflow(e.workflow_id, e.state, e.at);
          break;
        case "placement": {
          const a = this.actor(e.actorId);
          // Supervisors report every update; the log shows only what moved the actor.
          const news = a.status !== e.status || a.host !== e.host || a.epoch !== e.epoch;
          a.logic = e.logic;
          a.status = e.status;
          a.epoch = e.epoch;
          a.why = e.why;
          if (e.workflowId) a.workflowId = e.workflowId;
          if (e.host && e.host !== a.host) a.hosts.push({ node: e.host, epoch: e.epoch });
          a.host = e.host;
          if (news) this.log(a, { at: e.at, node: e.node, type: "placement", text: `${e.status}${e.host ? ` on ${e.host}` : ""} (epoch ${e.epoch})${e.why ? `: ${e.why}` : ""}` });
          break;
        }
        case "actor": {
          const a = this.actor(e.actorId);
          if (e.workflowId) a.workflowId = e.workflowId;
          if (e.type === "@xstate.snapshot" && e.snapshot) a.snapshot = e.snapshot;
          if (e.type === "@xstate.event") {
            const type = (e.event as { type?: string })?.type ?? "?";
            if (!type.startsWith("xstate.")) this.log(a, { at: e.at, node: e.node, type: "event", text: type });
          }
          break;
        }
        case "dropped":
          this.dropped += e.count;
          break;
      }
    }
    this.changed();
  }

  workflow(id: string, state: WorkflowState, at = Date.now()): void {
    const w = this.workflows.get(id) ?? { id, name: state.name, status: state.status, owner: state.owner, startedAt: state.started_at, progress: state.progress, history: [] };
    Object.assign(w, { name: state.name, status: state.status, owner: state.owner, startedAt: state.started_at, progress: state.progress, state });
    // A history per workflow of a busy mesh would grow without end: only for the ones watched.
    if (this.watched.has(id)) {
      w.history.push({ at, state });
      if (w.history.length > MAX_HISTORY) w.history.splice(0, w.history.length - MAX_HISTORY);
    }
    this.workflows.set(id, w);
  }

  actor(id: string): ActorEntry {
    let a = this.actors.get(id);
    if (!a) {
      a = { id, host: null, status: "unknown", epoch: 0, why: null, hosts: [], log: [] };
      this.actors.set(id, a);
    }
    return a;
  }

  private log(a: ActorEntry, line: ActorEntry["log"][number]): void {
    a.log.push(line);
    if (a.log.length > MAX_LOG) a.log.splice(0, a.log.length - MAX_LOG);
  }
}
