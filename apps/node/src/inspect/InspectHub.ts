import type { Mesh } from "@shoal/mesh";
import {
  type InspectEvent,
  type InspectFilter,
  type Logger,
  type NodeRow,
  monotonicNow,
} from "@shoal/protocol";
import type { Runtime, SupervisedActor } from "@shoal/runtime";
import type { Transport } from "@shoal/transport";
import type { WorkflowService } from "@shoal/workflow";

export interface InspectHubOptions {
  mesh: Mesh;
  runtime: Runtime;
  workflows: WorkflowService;
  transport: Transport;
  logger: Logger;
  toRow(member: ReturnType<Mesh["members"]>[number]): NodeRow;
  /** Batches go out this often. */
  flushMs?: number;
  /** A batch never holds more events than this; the rest is coalesced or dropped (and counted). */
  maxPerFlush?: number;
}

interface Sink {
  filter: InspectFilter;
  send(events: InspectEvent[]): void;
}

const LEASE_MS = 5_000;

/**
 * One stream of inspection events for the whole mesh. Each node captures its own (XState events
 * of its hosted actors, placements of the actors it supervises, membership, workflow states);
 * a node with browsers attached leases the streams of its peers, so any node shows the mesh.
 * Capture only runs while someone listens, and every listener gets batches at most every
 * `flushMs`, coalesced when a busy mesh produces more than `maxPerFlush`.
 */
export class InspectHub {
  private readonly sinks = new Set<Sink>();
  /** Peers that leased this node's events, until when (monotonic clock; `at` in events is wall time, for people). */
  private readonly leases = new Map<string, number>();
  private pending: InspectEvent[] = [];
  private readonly dirtyWorkflows = new Set<string>();
  private capturing: (() => void) | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly self: string;

  constructor(private readonly options: InspectHubOptions) {
    this.log = options.logger.child({ component: "inspect" });
    this.self = options.transport.identity.name;
    options.transport.handleCast("inspect.subscribe", ({ leaseMs }, from) => {
      this.leases.set(from.id, monotonicNow() + leaseMs);
      this.ensureCapture();
    });
    options.transport.handleCast(
      "inspect.events",
      ({ events }) => {
        for (const sink of this.sinks) this.deliver(sink, events);
      },
      ({ events }, from) => {
        const other = events.find((e) => e.node !== from.name);
        return other ? `an inspection event about ${other.node.slice(0, 100)}, sent by ${from.name}` : undefined;
      },
    );
  }

  /** Adds a listener (a browser); returns how to remove it. */
  subscribe(filter: InspectFilter, send: (events: InspectEvent[]) => void): () => void {
    const sink: Sink = { filter, send };
    this.sinks.add(sink);
    this.ensureCapture();
    if (!this.leaseTimer) {
      this.renewLeases();
      this.leaseTimer = setInterval(() => this.renewLeases(), LEASE_MS / 2);
    }
    // A new listener first gets the mesh as this node sees it.
    const now = Date.now();
    send(this.options.mesh.members().map((m) => ({ kind: "member" as const, at: now, node: this.self, member: this.options.toRow(m) })));
    return () => {
      this.sinks.delete(sink);
      if (this.sinks.size === 0) {
        clearInterval(this.leaseTimer);
        this.leaseTimer = undefined;
      }
    };
  }

  close(): void {
    clearInterval(this.leaseTimer);
    clearInterval(this.flushTimer);
    this.capturing?.();
  }

  private renewLeases(): void {
    for (const m of this.options.mesh.members()) {
      if (m.self || m.status === "down") continue;
      try {
        this.options.transport.cast(m.id, "inspect.subscribe", { leaseMs: LEASE_MS }, { droppable: true });
      } catch (err) {
        this.log.debug({ err, peer: m.name }, "could not lease a peer's inspection events");
      }
    }
  }

  private wanted(): boolean {
    const now = monotonicNow();
    for (const [peer, until] of this.leases) if (until < now) this.leases.delete(peer);
    return this.sinks.size > 0 || this.leases.size > 0;
  }

  private ensureCapture(): void {
    if (this.capturing) return;
    const { runtime, mesh, workflows } = this.options;
    const onActor = (e: InspectEvent) => this.pending.push(e);
    const onPlacement = (a: SupervisedActor) =>
      this.pending.push({
        kind: "placement",
        at: Date.now(),
        node: this.self,
        actorId: a.id,
        logic: a.logic,
        status: a.status,
        host: a.nodeName ?? null,
        epoch: a.epoch,
        why: a.decision && a.status !== "pending" && a.status !== "moving" ? a.decision.why : (a.waiting ?? null),
        ...(a.labels?.workflowId !== undefined && { workflowId: a.labels.workflowId }),
      });
    const onMember = () => {
      const at = Date.now();
      for (const m of mesh.members()) this.pending.push({ kind: "member", at, node: this.self, member: this.options.toRow(m) });
    };
    const onWorkflow = (id: string) => this.dirtyWorkflows.add(id);
    const stopActors = runtime.inspect(onActor);
    const stopPlacements = runtime.onPlacement(onPlacement);
    mesh.on("changes", onMember);
    workflows.on("changed", onWorkflow);
    this.flushTimer = setInterval(() => this.flush(), this.options.flushMs ?? 100);
    this.capturing = () => {
      stopActors();
      stopPlacements();
      mesh.off("changes", onMember);
      workflows.off("changed", onWorkflow);
      clearInterval(this.flushTimer);
      this.capturing = undefined;
    };
  }

  private flush(): void {
    if (!this.wanted()) {
      this.capturing?.();
      this.pending = [];
      this.dirtyWorkflows.clear();
      return;
    }
    const at = Date.now();
    for (const id of this.dirtyWorkflows) {
      this.options.workflows
        .state(id)
        .then((state) => this.pending.push({ kind: "workflow", at, node: this.self, workflow_id: id, state }))
        .catch((err: unknown) => this.log.debug({ err, id }, "workflow state unavailable"));
    }
    this.dirtyWorkflows.clear();
    if (this.pending.length === 0) return;
    const events = this.pending;
    this.pending = [];
    for (const sink of this.sinks) this.deliver(sink, events);
    for (const peer of this.leases.keys()) {
      try {
        this.options.transport.cast(peer, "inspect.events", { events: this.limit(events) }, { droppable: true });
      } catch (err) {
        this.log.debug({ err, peer }, "could not forward inspection events");
      }
    }
  }

  private deliver(sink: Sink, events: InspectEvent[]): void {
    const wf = sink.filter.workflow;
    const chosen = wf === undefined ? events : events.filter((e) => e.kind === "member" || e.kind === "dropped" || ("workflowId" in e && e.workflowId === wf) || ("workflow_id" in e && e.workflow_id === wf));
    if (chosen.length > 0) sink.send(this.limit(chosen));
  }

  private limit(events: InspectEvent[]): InspectEvent[] {
    return coalesce(events, this.options.maxPerFlush ?? 2_000, this.self);
  }
}

/**
 * Keeps a batch under `max` events: first only the newest snapshot per actor survives, then the
 * oldest events go, and a `dropped` event (from `node`) says how many were left out.
 */
export function coalesce(events: InspectEvent[], max: number, node: string): InspectEvent[] {
  if (events.length <= max) return events;
  const newest = new Map<string, number>();
  events.forEach((e, i) => {
    if (e.kind === "actor" && e.type === "@xstate.snapshot") newest.set(e.actorId, i);
  });
  let kept = events.filter((e, i) => !(e.kind === "actor" && e.type === "@xstate.snapshot") || newest.get(e.actorId) === i);
  if (kept.length > max) kept = kept.slice(kept.length - max + 1);
  return [...kept, { kind: "dropped", at: Date.now(), node, count: events.length - kept.length }];
}
