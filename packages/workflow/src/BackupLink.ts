import type { Mesh } from "@shoal/mesh";
import type { InstanceRecord, Logger, PlannedInstance, WorkflowClaim, WorkflowReplica } from "@shoal/protocol";
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

export interface BackupLinkOptions {
  transport: Transport;
  mesh: Mesh;
  logger: Logger;
  /** A backup answered that another node owns the workflow at a higher epoch. */
  fenced(claim: WorkflowClaim): void;
}

/**
 * The owner's side of workflow replication: each owned workflow has one backup peer that gets
 * the same writes as the owner's store, so that it can take the workflow over if the owner goes
 * down. The backup is the first up peer after this node in node-id order (so a fleet's backups
 * spread around the ring); when it goes down, or answers that it lost its copy, the workflow
 * is copied whole to the next one.
 */
export class BackupLink {
  private readonly backups = new Map<string, string>();
  /** Every peer given a copy of a workflow while it is owned here: the nodes that may take it over. */
  private readonly holders = new Map<string, Set<string>>();
  private readonly log: Logger;

  constructor(private readonly options: BackupLinkOptions) {
    this.log = options.logger.child({ component: "workflow-backup" });
  }

  /** Where a workflow's copy is kept now, if anywhere. */
  backupOf(id: string): string | undefined {
    return this.backups.get(id);
  }

  /** Whether `nodeId` was given a copy of a workflow owned here (it may be the one that took it over). */
  holdsCopy(id: string, nodeId: string): boolean {
    return this.holders.get(id)?.has(nodeId) ?? false;
  }

  /** Copies the whole workflow to its backup (a new one if it has none). */
  full(wf: ReplicaSource): void {
    const backup = this.backups.get(wf.id) ?? this.pick();
    if (!backup) {
      this.backups.delete(wf.id);
      this.log.debug({ workflowId: wf.id }, "no peer to keep a copy of the workflow");
      return;
    }
    this.backups.set(wf.id, backup);
    const deadlineLeftMs = wf.deadlineLeftMs();
    const op: WorkflowReplica = {
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
    };
    this.send(backup, op, wf);
  }

  /** The records of a workflow that changed; the whole workflow if its backup needs it. */
  records(wf: ReplicaSource, records: InstanceRecord[]): void {
    const backup = this.backups.get(wf.id);
    if (!backup) {
      this.full(wf);
      return;
    }
    this.send(backup, { op: "records", workflow_id: wf.id, owner: this.options.transport.identity.id, epoch: wf.epoch, records, resumes: wf.resumes() }, wf);
  }

  /**
   * The workflow ended: its backup lets the copy go. One that ended without running here (after
   * a restart) has no backup yet: the peer that would be it is told, as it may hold a copy.
   */
  ended(id: string, epoch: number): void {
    const backup = this.backups.get(id) ?? this.pick();
    this.backups.delete(id);
    if (backup) this.send(backup, { op: "ended", workflow_id: id, owner: this.options.transport.identity.id, epoch });
  }

  /**
   * Forgets a workflow without telling its backup (it is not ours any more, or its ended state
   * is dropped). Until then its holders are kept, ended or not: one may have taken it over while
   * this node was cut off, and its claim comes when the link heals.
   */
  forget(id: string): void {
    this.backups.delete(id);
    this.holders.delete(id);
  }

  /** A peer went down: the workflows it kept copies of get a new backup. */
  peerDown(nodeId: string, workflows: ReplicaSource[]): void {
    for (const wf of workflows) {
      if (this.backups.get(wf.id) !== nodeId) continue;
      this.backups.delete(wf.id);
      this.full(wf);
    }
  }

  /** A peer came up: workflows without a backup (there was no peer) get one. */
  peerUp(workflows: ReplicaSource[]): void {
    for (const wf of workflows) if (!this.backups.has(wf.id)) this.full(wf);
  }

  private pick(): string | undefined {
    const self = this.options.transport.identity.id;
    const peers = this.options.mesh
      .members()
      .filter((m) => !m.self && m.status === "up")
      .map((m) => m.id)
      .sort();
    return peers.find((id) => id > self) ?? peers[0];
  }

  private send(backup: string, op: WorkflowReplica, wf?: ReplicaSource): void {
    if (op.op !== "ended") {
      const holders = this.holders.get(op.workflow_id) ?? new Set<string>();
      holders.add(backup);
      this.holders.set(op.workflow_id, holders);
    }
    this.options.transport
      .request(backup, "workflow.replica", op)
      .then((answer) => {
        if ("fenced" in answer) this.options.fenced(answer.fenced);
        else if ("unknown" in answer && wf && this.backups.get(wf.id) === backup) {
          // It lost its copy (it restarted): send it whole.
          this.backups.delete(wf.id);
          this.full(wf);
        }
      })
      .catch((err: unknown) => {
        // The next write, or the peer's `down`, picks another backup.
        if (wf && this.backups.get(wf.id) === backup) this.backups.delete(wf.id);
        this.log.debug({ err, workflowId: op.workflow_id, backup }, "a copy of the workflow did not reach its backup");
      });
  }
}
