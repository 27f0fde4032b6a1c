import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { ShoalError, type WorkflowResult, type WorkflowState } from "@shoal/protocol";
import Database from "better-sqlite3";
import type { PlannedInstance } from "./planWorkflow.js";
import type { InstanceRecord } from "./workflowMachine.js";

/** What a node needs to run a workflow again after it restarted. */
export interface StoredWorkflow {
  id: string;
  /** The spec, as checked when it was accepted. */
  spec: unknown;
  /** The planned instances: a fan-out over nodes is fixed when the workflow is accepted. */
  instances: PlannedInstance[];
  startedAt: number;
  /** The latest record of each instance that has one. */
  records: Record<string, InstanceRecord>;
}

export interface EndedWorkflow {
  id: string;
  endedAt: number;
  state: WorkflowState;
  result: WorkflowResult;
}

const SCHEMA_VERSION = 1;

/**
 * The workflows a node owns, in SQLite (a file in `--data-dir`): each workflow's spec and plan
 * once, then a row per instance rewritten when that instance changes, then the final state and
 * result. Writes are synchronous, so what `save*` returned is on disk (WAL, synchronous=NORMAL:
 * a process crash loses nothing, a power cut may lose the last transactions). The node holds the
 * file exclusively while it runs: read it with other tools only when the node is stopped.
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
      if (version !== 0 && version !== SCHEMA_VERSION) {
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
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
      return new WorkflowStore(db);
    } catch (err) {
      if (err instanceof ShoalError) throw err;
      throw new ShoalError("SHOAL_ERR_STORE", `cannot open the workflow store ${file}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** A workflow this node accepted. */
  started(wf: Omit<StoredWorkflow, "records">): void {
    this.guarded("store a new workflow", () => this.stmts.insertWorkflow.run(wf.id, JSON.stringify(wf.spec), JSON.stringify(wf.instances), wf.startedAt));
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

  /** Workflows that had not ended, oldest first, with their latest records. */
  unfinished(): StoredWorkflow[] {
    const rows = this.stmts.selectUnfinished.all() as { id: string; spec: string; instances: string; started_at: number }[];
    return rows.map((row) => {
      const records: Record<string, InstanceRecord> = {};
      for (const r of this.stmts.selectRecords.all(row.id) as { id: string; record: string }[]) records[r.id] = JSON.parse(r.record);
      return { id: row.id, spec: JSON.parse(row.spec), instances: JSON.parse(row.instances), startedAt: row.started_at, records };
    });
  }

  /** Ended workflows, oldest first. */
  endedWorkflows(): EndedWorkflow[] {
    const rows = this.stmts.selectEnded.all() as { id: string; ended_at: number; state: string; result: string }[];
    return rows.map((row) => ({ id: row.id, endedAt: row.ended_at, state: JSON.parse(row.state), result: JSON.parse(row.result) }));
  }

  /** Drops a workflow (an ended one past its retention). */
  forget(id: string): void {
    this.guarded("drop a workflow", () => this.stmts.forget(id));
  }

  close(): void {
    if (this.db.open) this.db.close();
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
  const endWorkflow = db.prepare("UPDATE workflows SET ended_at = ?, state = ?, result = ? WHERE id = ?");
  const deleteRecords = db.prepare("DELETE FROM instances WHERE workflow_id = ?");
  const deleteWorkflow = db.prepare("DELETE FROM workflows WHERE id = ?");
  const upsertRecord = db.prepare("INSERT INTO instances (workflow_id, id, record) VALUES (?, ?, ?) ON CONFLICT (workflow_id, id) DO UPDATE SET record = excluded.record");
  return {
    insertWorkflow: db.prepare("INSERT INTO workflows (id, spec, instances, started_at) VALUES (?, ?, ?, ?)"),
    // Made once: better-sqlite3 prepares BEGIN and COMMIT for each transaction function.
    upsertRecords: db.transaction((changes: { workflowId: string; record: InstanceRecord }[]) => {
      for (const { workflowId, record } of changes) upsertRecord.run(workflowId, record.id, JSON.stringify(record));
    }),
    end: db.transaction((wf: EndedWorkflow) => {
      endWorkflow.run(wf.endedAt, JSON.stringify(wf.state), JSON.stringify(wf.result), wf.id);
      deleteRecords.run(wf.id);
    }),
    forget: db.transaction((id: string) => {
      deleteRecords.run(id);
      deleteWorkflow.run(id);
    }),
    selectUnfinished: db.prepare("SELECT id, spec, instances, started_at FROM workflows WHERE ended_at IS NULL ORDER BY started_at, id"),
    selectRecords: db.prepare("SELECT id, record FROM instances WHERE workflow_id = ?"),
    selectEnded: db.prepare("SELECT id, ended_at, state, result FROM workflows WHERE ended_at IS NOT NULL ORDER BY ended_at, id"),
  };
}
