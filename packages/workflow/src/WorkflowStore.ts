import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { type InstanceRecord, type PlannedInstance, ShoalError, type WorkflowReplica, type WorkflowReplicaAnswer, type WorkflowResult, type WorkflowState } from "@shoal/protocol";
import Database from "better-sqlite3";

/** What a node needs to run a workflow again: after its own restart, or taking over from a dead owner. */
export interface StoredWorkflow {
  id: string;
  /** Node id of its owner. */
  owner: string;
  /** Ownership epoch: 1 when accepted, +1 at each takeover. */
  epoch: number;
  /** The spec, as checked when it was accepted. */
  spec: unknown;
  /** The planned instances: a fan-out over nodes is fixed when the workflow is accepted. */
  instances: PlannedInstance[];
  startedAt: number;
  /** The latest record of each instance that has one. */
  records: Record<string, InstanceRecord>;
  /**
   * Resumes of it begun (after a restart or at a takeover) that have not yet shown they survive:
   * each is counted before the workflow is restored, and cleared once it has run a while, so a
   * count that reaches QUARANTINE_AFTER_CRASHES means it crashed its node that many times.
   */
  resumes: number;
}

export interface EndedWorkflow {
  id: string;
  endedAt: number;
  state: WorkflowState;
  result: WorkflowResult;
}

const SCHEMA_VERSION = 3;

interface WorkflowRow {
  id: string;
  owner: string;
  epoch: number;
  spec: string;
  instances: string;
  started_at: number;
  resumes: number;
}

/**
 * The workflows of a node, in SQLite (a file in `--data-dir`): those it owns, and copies
 * (replicas) of those it is the backup of. For each: the spec and plan once, then a row per
 * instance rewritten when that instance changes, then (owned ones) the final state and result.
 * Writes are synchronous, so what a call stored is on disk when it returns (WAL,
 * synchronous=NORMAL: a process crash loses nothing, a power cut may lose the last transactions).
 * The node holds the file exclusively while it runs: read it with other tools only when the node
 * is stopped.
 */
export class WorkflowStore {
  private readonly db: Database.Database;
  private readonly stmts: ReturnType<typeof prepare>;

  private constructor(db: Database.Database) {
    this.db = db;
    this.stmts = prepare(db);
  }

  /** Opens (or creates) the store; SHOAL_ERR_STORE when the file cannot be used. */
  static open(file: string): WorkflowStore {
    try {
      if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
      const db = new Database(file);
      // One process per data dir (its lock file says so): holding SQLite's lock for good saves
      // the lock calls of every transaction, and with WAL it needs no shared-memory file.
      db.pragma("locking_mode = EXCLUSIVE");
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      const version = db.pragma("user_version", { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        db.close();
        throw new ShoalError("SHOAL_ERR_STORE", `${file} has workflow store version ${version}; this node reads version ${SCHEMA_VERSION}`);
      }
      db.exec(`
        CREATE TABLE IF NOT EXISTS workflows (
          id TEXT PRIMARY KEY,
          spec TEXT NOT NULL,
          instances TEXT NOT NULL,
          started_at INTEGER NOT NULL,
          ended_at INTEGER,
          state TEXT,
          result TEXT
        );
        CREATE INDEX IF NOT EXISTS workflows_ended_at ON workflows (ended_at);
        CREATE TABLE IF NOT EXISTS instances (
          workflow_id TEXT NOT NULL,
          id TEXT NOT NULL,
          record TEXT NOT NULL,
          PRIMARY KEY (workflow_id, id)
        ) WITHOUT ROWID;
      `);
      if (version < 2) {
        // Version 1 had no owners: every workflow in it is the node's own ('' until `startedBy`).
        db.exec("ALTER TABLE workflows ADD COLUMN owner TEXT NOT NULL DEFAULT ''; ALTER TABLE workflows ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1;");
      }
      if (version < 3) {
        // Version 2 counted no resumes: no workflow in it is suspected of crashing its node.
        db.exec("ALTER TABLE workflows ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0;");
      }
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
      return new WorkflowStore(db);
    } catch (err) {
      if (err instanceof ShoalError) throw err;
      throw new ShoalError("SHOAL_ERR_STORE", `cannot open the workflow store ${file}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** A workflow this node accepted (or took over: then it is already here as a replica). */
  started(wf: Omit<StoredWorkflow, "records" | "resumes">): void {
    this.guarded("store a new workflow", () =>
      this.stmts.insertWorkflow.run(wf.id, wf.owner, wf.epoch, JSON.stringify(wf.spec), JSON.stringify(wf.instances), wf.startedAt),
    );
  }

  /** The latest records of instances that changed, for any number of workflows, in one transaction. */
  saveRecords(changes: { workflowId: string; record: InstanceRecord }[]): void {
    if (changes.length === 0) return;
    this.guarded("store workflow progress", () => this.stmts.upsertRecords(changes));
  }

  /** A workflow ended: its final state and result replace its instance rows. */
  ended(wf: EndedWorkflow): void {
    this.guarded("store the end of a workflow", () => this.stmts.end(wf));
  }

  /**
   * Resumes of these workflows begin: each one's count goes up by one, committed (one
   * transaction) before the caller restores any of them, so a crash on the way leaves it counted.
   */
  resumesBegun(ids: string[]): void {
    if (ids.length === 0) return;
    this.guarded("count a resume", () => this.stmts.resumesBegun(ids));
  }

  /** The workflow has run long enough after its resume: it is no longer suspected of crashing its node. */
  resumeSurvived(id: string): void {
    this.guarded("clear a resume count", () => this.stmts.resumeSurvived.run(id));
  }

  /** Owner and epoch of a workflow this store knows, owned or replicated. */
  ownership(id: string): { owner: string; epoch: number } | undefined {
    return this.guarded("read a workflow's owner", () => this.stmts.selectOwnership.get(id) as { owner: string; epoch: number } | undefined);
  }

  /** Workflows `owner` took over (epoch above 1), running or ended, with their epochs. */
  takenOverBy(owner: string): { id: string; epoch: number }[] {
    return this.guarded("read taken-over workflows", () => this.stmts.selectTakenOver.all(owner) as { id: string; epoch: number }[]);
  }

  /** Makes `owner` the owner of a workflow at `epoch` (a takeover). */
  claim(id: string, owner: string, epoch: number): void {
    this.guarded("claim a workflow", () => this.stmts.claim.run(owner, epoch, id));
  }

  /**
   * Applies an owner's write to the replica kept here. Refused (`fenced`) when this store knows
   * the workflow at a higher epoch: the sender is an owner that was replaced.
   */
  replicate(op: WorkflowReplica, ownerName: (nodeId: string) => string): WorkflowReplicaAnswer {
    return this.guarded("store a replica", () => {
      const known = this.stmts.selectOwnership.get(op.workflow_id) as { owner: string; epoch: number } | undefined;
      if (known && (known.epoch > op.epoch || (known.epoch === op.epoch && known.owner !== op.owner))) {
        return { fenced: { workflow_id: op.workflow_id, owner: known.owner, owner_name: ownerName(known.owner), epoch: known.epoch } };
      }
      if (op.op === "ended") {
        if (known) this.stmts.forget(op.workflow_id);
        return { stored: true };
      }
      if (op.op === "records") {
        if (!known) return { unknown: true };
        this.stmts.replicaRecords(op);
        return { stored: true };
      }
      this.stmts.replaceReplica(op);
      return { stored: true };
    });
  }

  /** Workflows owned by `owner` that have not ended, oldest first, with their latest records. */
  unfinished(owner: string): StoredWorkflow[] {
    return this.guarded("read unfinished workflows", () => (this.stmts.selectUnfinished.all(owner) as WorkflowRow[]).map((row) => this.load(row)));
  }

  /** Ended workflows (only owned ones end here), oldest first. */
  endedWorkflows(): EndedWorkflow[] {
    const rows = this.guarded("read ended workflows", () => this.stmts.selectEnded.all() as { id: string; ended_at: number; state: string; result: string }[]);
    return rows.map((row) => ({ id: row.id, endedAt: row.ended_at, state: JSON.parse(row.state), result: JSON.parse(row.result) }));
  }

  /**
   * The node `self` starts with this store: workflows from a version-1 store become its own, and
   * the replicas of every other owner are dropped. A node that was down missed their updates, and
   * their owners have picked other backups meanwhile; they send it fresh copies if it is their
   * backup again. Returns how many replicas were dropped.
   */
  startedBy(self: string): number {
    return this.guarded("prepare the store", () => this.stmts.startedBy(self));
  }

  /** Drops a workflow (an ended one past its retention, or one another node owns now). */
  forget(id: string): void {
    this.guarded("drop a workflow", () => this.stmts.forget(id));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private load(row: WorkflowRow): StoredWorkflow {
    const records: Record<string, InstanceRecord> = {};
    for (const r of this.stmts.selectRecords.all(row.id) as { id: string; record: string }[]) records[r.id] = JSON.parse(r.record);
    return { id: row.id, owner: row.owner, epoch: row.epoch, spec: JSON.parse(row.spec), instances: JSON.parse(row.instances), startedAt: row.started_at, records, resumes: row.resumes };
  }

  /** SQLite's errors (disk full, file gone) as SHOAL_ERR_STORE saying what could not be done. */
  private guarded<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new ShoalError("SHOAL_ERR_STORE", `could not ${what}: ${(err as Error).message}`, { cause: err });
    }
  }
}

function prepare(db: Database.Database) {
  const endWorkflow = db.prepare("UPDATE workflows SET ended_at = ?, state = ?, result = ?, resumes = 0 WHERE id = ?");
  const deleteRecords = db.prepare("DELETE FROM instances WHERE workflow_id = ?");
  const deleteWorkflow = db.prepare("DELETE FROM workflows WHERE id = ?");
  const upsertRecord = db.prepare("INSERT INTO instances (workflow_id, id, record) VALUES (?, ?, ?) ON CONFLICT (workflow_id, id) DO UPDATE SET record = excluded.record");
  const upsertWorkflow = db.prepare(
    `INSERT INTO workflows (id, owner, epoch, spec, instances, started_at, resumes) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, epoch = excluded.epoch, spec = excluded.spec, instances = excluded.instances, started_at = excluded.started_at, ended_at = NULL, resumes = excluded.resumes`,
  );
  const setResumes = db.prepare("UPDATE workflows SET resumes = ? WHERE id = ?");
  const countResume = db.prepare("UPDATE workflows SET resumes = resumes + 1 WHERE id = ?");
  const adoptLegacy = db.prepare("UPDATE workflows SET owner = ? WHERE owner = ''");
  const replicaIds = db.prepare("SELECT id FROM workflows WHERE owner <> ?");
  const forget = db.transaction((id: string) => {
    deleteRecords.run(id);
    deleteWorkflow.run(id);
  });
  // Transaction functions are made once: better-sqlite3 prepares BEGIN and COMMIT for each.
  return {
    insertWorkflow: db.prepare("INSERT INTO workflows (id, owner, epoch, spec, instances, started_at) VALUES (?, ?, ?, ?, ?, ?)"),
    upsertRecords: db.transaction((changes: { workflowId: string; record: InstanceRecord }[]) => {
      for (const { workflowId, record } of changes) upsertRecord.run(workflowId, record.id, JSON.stringify(record));
    }),
    replicaRecords: db.transaction((op: Extract<WorkflowReplica, { op: "records" }>) => {
      for (const record of op.records) upsertRecord.run(op.workflow_id, record.id, JSON.stringify(record));
      if (op.resumes !== undefined) setResumes.run(op.resumes, op.workflow_id);
    }),
    resumesBegun: db.transaction((ids: string[]) => {
      for (const id of ids) countResume.run(id);
    }),
    resumeSurvived: db.prepare("UPDATE workflows SET resumes = 0 WHERE id = ?"),
    end: db.transaction((wf: EndedWorkflow) => {
      endWorkflow.run(wf.endedAt, JSON.stringify(wf.state), JSON.stringify(wf.result), wf.id);
      deleteRecords.run(wf.id);
    }),
    replaceReplica: db.transaction((op: Extract<WorkflowReplica, { op: "started" }>) => {
      upsertWorkflow.run(op.workflow_id, op.owner, op.epoch, JSON.stringify(op.spec), JSON.stringify(op.instances), op.started_at, op.resumes ?? 0);
      deleteRecords.run(op.workflow_id);
      for (const record of op.records) upsertRecord.run(op.workflow_id, record.id, JSON.stringify(record));
    }),
    startedBy: db.transaction((self: string) => {
      adoptLegacy.run(self);
      const ids = (replicaIds.all(self) as { id: string }[]).map((r) => r.id);
      for (const id of ids) forget(id);
      return ids.length;
    }),
    forget,
    claim: db.prepare("UPDATE workflows SET owner = ?, epoch = ? WHERE id = ?"),
    selectOwnership: db.prepare("SELECT owner, epoch FROM workflows WHERE id = ?"),
    selectTakenOver: db.prepare("SELECT id, epoch FROM workflows WHERE owner = ? AND epoch > 1"),
    selectUnfinished: db.prepare("SELECT id, owner, epoch, spec, instances, started_at, resumes FROM workflows WHERE ended_at IS NULL AND owner = ? ORDER BY started_at, id"),
    selectRecords: db.prepare("SELECT id, record FROM instances WHERE workflow_id = ?"),
    selectEnded: db.prepare("SELECT id, ended_at, state, result FROM workflows WHERE ended_at IS NOT NULL ORDER BY ended_at, id"),
  };
}
