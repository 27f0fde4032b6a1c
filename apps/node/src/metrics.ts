import type { Mesh, MeshStats } from "@shoal/mesh";
import type { Runtime } from "@shoal/runtime";
import type { TransportStats } from "@shoal/transport";
import type { WorkflowService, WorkflowStore, WorkflowStoreStats } from "@shoal/workflow";
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

/**
 * The node's Prometheus registry. Transport counters live as plain numbers in the transport
 * (no metrics library below apps/); here they are read at scrape time.
 */
export function createMetrics(stats: TransportStats, mesh: Mesh, runtime: Runtime, workflows: WorkflowService, store: WorkflowStore): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "shoal_" });

  new Gauge({
    name: "shoal_peers",
    help: "Members of the mesh as this node sees them, by status (this node excluded).",
    labelNames: ["status"],
    registers: [registry],
    collect() {
      const counts = { up: 0, suspect: 0, down: 0 };
      for (const m of mesh.members()) if (!m.self) counts[m.status]++;
      for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
    },
  });

  const counters: [keyof TransportStats, string, string][] = [
    ["framesIn", "shoal_frames_in_total", "Frames received from peers."],
    ["framesOut", "shoal_frames_out_total", "Frames sent to peers."],
    ["bytesIn", "shoal_bytes_in_total", "Bytes received from peers."],
    ["bytesOut", "shoal_bytes_out_total", "Bytes sent to peers."],
    ["badFrames", "shoal_bad_frames_total", "Frames refused: not MessagePack, wrong schema, too large, or unexpected."],
    ["droppedFrames", "shoal_dropped_frames_total", "Frames dropped because a peer's send queue was full."],
    ["reconnects", "shoal_reconnects_total", "Dial attempts after a lost or failed connection."],
    ["authFailures", "shoal_auth_failures_total", "Handshakes refused for a wrong or missing cluster secret."],
    ["handshakeFailures", "shoal_handshake_failures_total", "Handshakes on /mesh that failed, for any reason (logged a few per window)."],
    ["refusedConnections", "shoal_refused_connections_total", "Connections on /mesh refused before the handshake: too many were still in one."],
    ["overloadedRequests", "shoal_overloaded_peer_requests_total", "Requests from peers refused because that peer had too many being answered."],
    ["forbiddenMessages", "shoal_forbidden_peer_messages_total", "Peer messages refused because their sender may not send them (SHOAL_ERR_PEER_FORBIDDEN)."],
  ];
  for (const [key, name, help] of counters) countedElsewhere(registry, name, help, () => stats[key]);
  new Gauge({
    name: "shoal_actors_hosted",
    help: "Actors running on this node (busy slots).",
    registers: [registry],
    collect() {
      this.set(runtime.stats.hosted);
    },
  });
  new Gauge({
    name: "shoal_actors_pending",
    help: "Actors spawned from this node that wait for a free slot somewhere.",
    registers: [registry],
    collect() {
      this.set(runtime.stats.pending);
    },
  });
  new Gauge({
    name: "shoal_actors_supervised",
    help: "Actors spawned from this node, by status.",
    labelNames: ["status"],
    registers: [registry],
    collect() {
      for (const [status, n] of Object.entries(runtime.stats.supervised)) this.set({ status }, n);
    },
  });
  new Gauge({
    name: "shoal_workflows_running",
    help: "Workflows this node owns that have not ended.",
    registers: [registry],
    collect() {
      this.set(workflows.running);
    },
  });
  const ownership: [keyof WorkflowService["ownershipStats"], string, string][] = [
    ["takenOver", "shoal_workflows_taken_over_total", "Workflows this node took over from a down owner (it held their copy)."],
    ["gaveWay", "shoal_workflows_gave_way_total", "Copies of workflows stopped or dropped here because another node owns them at a higher epoch."],
  ];
  for (const [key, name, help] of ownership) countedElsewhere(registry, name, help, () => workflows.ownershipStats[key]);
  const membership: [keyof MeshStats, string, string][] = [
    ["refused", "shoal_members_refused_total", "Gossip records of new members refused because the membership table was full (SHOAL_ERR_TABLE_FULL)."],
    ["evicted", "shoal_members_evicted_total", "Down members dropped from the full membership table to make room for a new one."],
    ["forged", "shoal_forged_incarnations_total", "Records of this node at an incarnation it never had, ignored (SHOAL_ERR_FALSE_INCARNATION)."],
    ["unverified", "shoal_unverified_incarnations_total", "Third parties' records that would have raised another member's incarnation, ignored."],
    ["exhausted", "shoal_unrefuted_reports_total", "Reports that this node is not up which it could not refute: its incarnation is at the bound."],
    ["contradicted", "shoal_contradicted_down_reports_total", "Reports that a member is down, ignored because this node has a live link to it and heard from it lately."],
  ];
  for (const [key, name, help] of membership) countedElsewhere(registry, name, help, () => mesh.stats[key]);

  new Gauge({
    name: "shoal_store_writable",
    help: "1 while the workflow store can be written; 0 while new workflows get 503 SHOAL_ERR_STORE_UNAVAILABLE.",
    registers: [registry],
    collect() {
      this.set(store.stats.writable ? 1 : 0);
    },
  });
  new Gauge({
    name: "shoal_store_deferred_writes",
    help: "Writes of running workflows kept in memory until the store can be written again.",
    registers: [registry],
    collect() {
      this.set(store.stats.deferredWrites);
    },
  });
  const storeCounters: [keyof WorkflowStoreStats, string, string][] = [
    ["writeFailures", "shoal_store_write_failures_total", "Times the workflow store stopped being writable (a write or a sync failed)."],
    ["movedAside", "shoal_store_moved_aside_total", "1 if workflows.db could not be read at start and was moved aside as workflows.db.corrupt-<time>."],
    ["syncs", "shoal_store_syncs_total", "Syncs of the workflow store to disk (many acknowledgements per sync)."],
    ["commits", "shoal_store_commits_total", "Transactions the workflow store committed."],
  ];
  for (const [key, name, help] of storeCounters) countedElsewhere(registry, name, help, () => Number(store.stats[key]));
  countedElsewhere(
    registry,
    "shoal_stale_actor_messages_total",
    "Updates and outcomes from replaced placements (older epochs), dropped.",
    () => runtime.stats.staleMessages,
  );
  return registry;
}

/** A Prometheus counter over a plain number that another package increments; read at scrape time. */
function countedElsewhere(registry: Registry, name: string, help: string, read: () => number): void {
  let reported = 0;
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const now = read();
      if (now > reported) this.inc(now - reported);
      reported = now;
    },
  });
}
