import type { Mesh } from "@shoal/mesh";
import { type InstanceRecord, type Logger, type PlannedInstance, type WorkflowClaim, type WorkflowReplica, type WorkflowResult, type WorkflowState, isShoalError } from "@shoal/protocol";
import type { Transport } from "@shoal/transport";

/** What an owner replicates of one workflow. */
export interface ReplicaSource {
  id: string;
  epoch: number;
  spec: unknown;
  instances: PlannedInstance[];
  startedAt: number;
  /** Every instance record as it is now. */
  records(): InstanceRecord[];
  /** Its resumes that have not survived yet: a backup that takes it over goes on counting from there. */
  resumes(): number;
  /** What is left of its `deadline_ms` now (undefined: none), for the backup's own clock. */
  deadlineLeftMs(): number | undefined;
}

/** An ended workflow as its backups keep it. */
export interface EndedCopy {
  endedAt: number;
  state: WorkflowState;
  result: WorkflowResult;
}

export interface BackupLinkOptions {
  transport: Transport;
  mesh: Mesh;
  logger: Logger;
  /** Backups per workflow (`--replicas`, 1). */
  replicas?: number;
  /** How long a backup gets to answer a whole copy (it answers once the copy is synced on its disk). */
  copyTimeoutMs?: number;
  /** A backup answered that another node owns the workflow at a higher epoch. */
  fenced(claim: WorkflowClaim): void;
}

/**
 * The owner's side of workflow replication: each owned workflow has `replicas` backup peers
 * that get the same writes as the owner's store, so that one of them can take the workflow over
 * if the owner goes down. The backups are the first up peers after this node in node-id order
 * (so a fleet's backups spread around the ring), and that order is the order in which they take
 * over: each copy carries it. When one goes down, or answers that it lost its copy, the workflow
 * is copied whole to the next one. A whole copy is answered once the backup has synced it,
 * which is what a replicated 202 waits for.
 */
export class BackupLink {
  /** The backups of each workflow, in takeover order. */
  private readonly backups = new Map<string, string[]>();
  /** Those of them that answered `stored` to a whole copy: they hold it on disk. */
  private readonly confirmed = new Map<string, Set<string>>();
  /** Every peer given a copy of a workflow while it is owned here: the nodes that may take it over. */
  private readonly holders = new Map<string, Set<string>>();
  /** Ends each peer did not answer, by peer: sent again when its link is up (`connected`). */
  private readonly untold = new Map<string, Map<string, WorkflowReplica>>();
  private readonly log: Logger;
  private readonly replicas: number;

  constructor(private readonly options: BackupLinkOptions) {
    this.log = options.logger.child({ component: "workflow-backup" });
    this.replicas = options.replicas ?? 1;
  }

  /** Where a workflow's copies are kept now, in takeover order. */
  backupsOf(id: string): string[] {
    return this.backups.get(id) ?? [];
  }

  /** How many of its backups hold a whole copy on disk (they answered it). */
  copiesOf(id: string): number {
    return this.confirmed.get(id)?.size ?? 0;
  }

  /** Whether `nodeId` was given a copy of a workflow owned here (it may be the one that took it over). */
  holdsCopy(id: string, nodeId: string): boolean {
    return this.holders.get(id)?.has(nodeId) ?? false;
  }

  /**
   * Gives the workflow its backups (up to `replicas` of the peers up: those it has, then new
   * ones) and copies it whole to each, with their takeover order. Resolves, never rejects, once
   * each answered or failed: with how many backups hold it on disk then (0: no peer is up, or
   * none answered in time).
   */
  async full(wf: ReplicaSource): Promise<number> {
    const before = this.backups.get(wf.id) ?? [];
    const after = this.choose(before);
    if (after.length === 0) {
      this.backups.delete(wf.id);
      this.log.debug({ workflowId: wf.id }, "no peer to keep a copy of the workflow");
      return 0;
    }
    this.backups.set(wf.id, after);
    const op = this.startedOp(wf, after);
    await Promise.all(after.map((b) => this.send(b, op, wf, this.options.copyTimeoutMs ?? 5_000)));
    return this.copiesOf(wf.id);
  }

  /** The records of a workflow that changed; the whole workflow if it has no backup. */
  records(wf: ReplicaSource, records: InstanceRecord[]): void {
    const backups = this.backups.get(wf.id);
    if (!backups || backups.length === 0) {
      void this.full(wf);
      return;
    }
    const op = this.recordsOp(wf, records, backups);
    for (const b of backups) this.send(b, op, wf);
  }

  /**
   * The workflow ended. With its final state and result its backups keep it ended (readable
   * while this node is down); without, they let the copy go (a submission that was not
   * accepted). Every peer that was given a copy is told, not only the current backups: any of
   * them could take the workflow over with what it holds. One that ended without running here
   * (after a restart) has no backups yet: the peers that would be them are told, as they may
   * hold copies. `to` sends it again to those only. Resolves, never rejects, once each answered
   * or failed, with the peers that did not answer (a peer that answers it holds no copy has
   * nothing to take over with, and counts as told).
   */
  async ended(id: string, epoch: number, final?: EndedCopy, to?: string[]): Promise<string[]> {
    const targets = to ?? [...new Set([...(this.backups.get(id) ?? this.choose([])), ...(this.holders.get(id) ?? [])])];
    this.backups.delete(id);
    this.confirmed.delete(id);
    const op: WorkflowReplica = {
      op: "ended",
      workflow_id: id,
      owner: this.options.transport.identity.id,
      epoch,
      ...(final && { ended_at: final.endedAt, state: final.state, result: final.result }),
    };
    const told = await Promise.all(targets.map((b) => this.send(b, op, undefined, this.options.copyTimeoutMs ?? 5_000)));
    const missed = targets.filter((_, i) => !told[i]);
    for (const b of targets) {
      const untold = this.untold.get(b);
      if (missed.includes(b)) this.untold.set(b, (untold ?? new Map()).set(id, op));
      else untold?.delete(id);
    }
    return missed;
  }

  /**
   * A link to `peer` is up: the ends it missed (down, cut off or stopped when they were sent) go
   * to it now, before its copies could make it take those workflows over.
   */
  connected(peer: string): void {
    const untold = this.untold.get(peer);
    if (!untold) return;
    this.untold.delete(peer);
    for (const [id, op] of untold) {
      void this.send(peer, op, undefined, this.options.copyTimeoutMs ?? 5_000).then((told) => {
        if (!told) this.untold.set(peer, (this.untold.get(peer) ?? new Map()).set(id, op));
      });
    }
  }

  /**
   * Forgets a workflow without telling its backups (it is not ours any more, or its ended state
   * is dropped). Until then its holders are kept, ended or not: one may have taken it over while
   * this node was cut off, and its claim comes when the link heals.
   */
  forget(id: string): void {
    this.backups.delete(id);
    this.confirmed.delete(id);
    this.holders.delete(id);
    for (const untold of this.untold.values()) untold.delete(id);
  }

  /** A peer went down: the workflows it kept copies of get a new backup. */
  peerDown(nodeId: string, workflows: ReplicaSource[]): void {
    for (const wf of workflows) {
      if (!this.backups.get(wf.id)?.includes(nodeId)) continue;
      this.drop(wf.id, nodeId);
      void this.full(wf);
    }
  }

  /** A peer came up: workflows with fewer backups than wanted (there were not enough peers) get more. */
  peerUp(workflows: ReplicaSource[]): void {
    for (const wf of workflows) if ((this.backups.get(wf.id)?.length ?? 0) < this.replicas) void this.full(wf);
  }

  /** The backups to keep: those of `current` still up, then the next up peers in ring order, at most `replicas`, in ring order. */
  private choose(current: string[]): string[] {
    const self = this.options.transport.identity.id;
    const peers = this.options.mesh
      .members()
      .filter((m) => !m.self && m.status === "up")
      .map((m) => m.id)
      .sort();
    // Ring order after this node: the peers above it, then those below.
    const ring = [...peers.filter((id) => id > self), ...peers.filter((id) => id < self)];
    const kept = current.filter((b) => ring.includes(b));
    for (const id of ring) {
      if (kept.length >= this.replicas) break;
      if (!kept.includes(id)) kept.push(id);
    }
    return ring.filter((id) => kept.includes(id));
  }

  private startedOp(wf: ReplicaSource, backups: string[]): WorkflowReplica {
    const deadlineLeftMs = wf.deadlineLeftMs();
    return {
      op: "started",
      workflow_id: wf.id,
      owner: this.options.transport.identity.id,
      epoch: wf.epoch,
      spec: wf.spec,
      instances: wf.instances,
      started_at: wf.startedAt,
      records: wf.records(),
      resumes: wf.resumes(),
      ...(deadlineLeftMs !== undefined && { deadline_left_ms: deadlineLeftMs }),
      backups,
    };
  }

  private recordsOp(wf: ReplicaSource, records: InstanceRecord[], backups: string[]): WorkflowReplica {
    return { op: "records", workflow_id: wf.id, owner: this.options.transport.identity.id, epoch: wf.epoch, records, resumes: wf.resumes(), backups };
  }

  /** `backup` no longer keeps a copy of the workflow for this node. */
  private drop(id: string, backup: string): void {
    const left = (this.backups.get(id) ?? []).filter((b) => b !== backup);
    if (left.length > 0) this.backups.set(id, left);
    else this.backups.delete(id);
    this.confirmed.get(id)?.delete(backup);
  }

  /** Resolves with whether the peer answered. */
  private send(backup: string, op: WorkflowReplica, wf?: ReplicaSource, timeoutMs?: number): Promise<boolean> {
    if (op.op !== "ended") {
      const holders = this.holders.get(op.workflow_id) ?? new Set<string>();
      holders.add(backup);
      this.holders.set(op.workflow_id, holders);
    }
    const isBackup = () => wf !== undefined && (this.backups.get(wf.id)?.includes(backup) ?? false);
    return this.options.transport
      .request(backup, "workflow.replica", op, timeoutMs === undefined ? {} : { timeoutMs })
      .then((answer) => {
        if ("fenced" in answer) this.options.fenced(answer.fenced);
        else if ("unknown" in answer && wf && isBackup()) {
          // It lost its copy (it restarted): send it whole.
          this.confirmed.get(wf.id)?.delete(backup);
          return this.send(backup, this.startedOp(wf, this.backupsOf(wf.id)), wf, timeoutMs);
        } else if ("stored" in answer && op.op === "started" && isBackup()) {
          const confirmed = this.confirmed.get(op.workflow_id) ?? new Set<string>();
          confirmed.add(backup);
          this.confirmed.set(op.workflow_id, confirmed);
        }
        return true;
      })
      .catch((err: unknown) => {
        // The next write, or the peer's `down`, picks another backup.
        if (wf && isBackup()) this.drop(wf.id, backup);
        this.log.debug({ err, workflowId: op.workflow_id, backup }, "a copy of the workflow did not reach its backup");
        // A peer that runs no orchestrator holds no copy; any other refusal may come from one
        // that took the workflow over: its claim is on the way.
        return isShoalError(err, "SHOAL_ERR_NO_HANDLER");
      });
  }
}
