import { dirname } from "node:path";
import {
  type InstanceRecord,
  LogLimiter,
  type Logger,
  type PlannedInstance,
  ShoalError,
  type WorkflowReplica,
  type WorkflowReplicaAnswer,
  type WorkflowResult,
  type WorkflowState,
  silentLogger,
} from "@shoal/protocol";
import type Database from "better-sqlite3";
import { GroupSync } from "./GroupSync.js";
import { SCHEMA_VERSION, openStoreFile, syncDir } from "./openStoreFile.js";
import { type Ownership, compareOwnership } from "./ownership.js";
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
  /** Node id of its owner: this node, or the owner of a copy kept here. */
  owner: string;
  epoch: number;
  endedAt: number;
  state: WorkflowState;
  result: WorkflowResult;
}

/**
 * When a write counts as stored. `group` (the default): each commit goes to the WAL without a
 * sync (`synchronous=NORMAL`), and where a promise is made (a submission's 202) the WAL is
 * synced, once for everyone waiting (GroupSync); other writes are synced within a second.
 * `full`: SQLite syncs every commit itself (`synchronous=FULL`), on the event loop. `off`: no
 * sync at all (a power cut may lose the last commits, acknowledged ones too): for measuring
 * what durability costs.
 */
export type StoreSync = "group" | "full" | "off";
const SYNC_MODES: readonly string[] = ["group", "full", "off"] satisfies StoreSync[];

export interface WorkflowStoreOptions {
  /** Where the store says that it moved a corrupt file aside, that it cannot write, and that it can again. */
  logger?: Logger;
  /** `group` by default; `shoal node` takes `SHOAL_STORE_SYNC`. */
  sync?: StoreSync;
  /** While writes fail, one is tried this often (1 s). */
  probeMs?: number;
  /** A commit nobody waits for is synced within this long (1 s; `group` only). */
  lazySyncMs?: number;
}

/** Counters for the node's metrics. */
export interface WorkflowStoreStats {
  /** Transactions committed (a write of one call, or a group of submissions). */
  commits: number;
  /** Syncs to disk of the WAL: the store's own (`group`), or SQLite's of each commit (`full`). */
  syncs: number;
  /** Times the store went from writable to not (a write or a sync failed). */
  writeFailures: number;
  /** Whether it can be written now: while not, new workflows are refused. */
  writable: boolean;
  /** Writes kept in memory until the store can be written again. */
  deferredWrites: number;
  /** 1 if an unreadable file was moved aside when it was opened. */
  movedAside: number;
}


/** While writes fail: what waits to be written, and what it changes of who owns what. */
interface Outage {
  since: number;
  deferred: { what: string; op: () => void }[];
  /** Owner and epoch as the deferred writes make them (null: dropped), for the reads meanwhile. */
  owners: Map<string, Ownership | null>;
  timer: NodeJS.Timeout;
}

/** A full disk, a read-only one, an I/O error: the disk's trouble, not the data's. */
const DISK_TROUBLE = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|PERM)/;
const isDiskTrouble = (err: unknown) => DISK_TROUBLE.test(String((err as { code?: unknown }).code));

/** Submissions of one turn go in one transaction; a turn with more makes more. */
const MAX_GROUP = 512;

/** How long a refused submission should wait. */
const RETRY_AFTER_MS = 1_000;

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
 *
 * Writes are synchronous SQLite commits, except `started`: the submissions of one event-loop
 * turn are committed together and their promise resolves once they are synced (see StoreSync),
 * which is what a 202 waits for. A write that fails for the disk's sake (full, read-only, I/O
 * error) makes the store unwritable: new workflows are refused (SHOAL_ERR_STORE_UNAVAILABLE)
 * and copies for other owners too, while the writes of running workflows are kept in memory
 * and written, in order, by a probe that tries every `probeMs` until the disk takes them.
 * The node holds the file exclusively while it runs: read it with other tools only when the
 * node is stopped.
 */
export class WorkflowStore {
  private readonly stmts: ReturnType<typeof prepare>;
  private readonly sync: GroupSync | undefined;
  private readonly log: Logger;
  private readonly limiter: LogLimiter;
  private starts: { wf: Omit<StoredWorkflow, "records" | "resumes">; resolve(): void; reject(err: unknown): void }[] = [];
  private outage: Outage | undefined;
  /** Submissions committed and not yet answered (their sync runs): the submitter's, not a resume's. */
  private readonly accepting = new Set<string>();
  private commits = 0;
  private writeFailures = 0;

  private constructor(
    private readonly db: Database.Database,
    private readonly file: string,
    private readonly mode: StoreSync,
    private readonly options: WorkflowStoreOptions,
    /** Where an unreadable file was moved when this store was opened. */
    readonly movedAside: string | undefined,
  ) {
    this.stmts = prepare(db);
    this.log = options.logger ?? silentLogger;
    this.limiter = new LogLimiter(this.log, { perWindow: 1, windowMs: 60_000 });
    if (mode === "group" && file !== ":memory:") {
      this.sync = GroupSync.forWal(file, { lazyMs: options.lazySyncMs ?? 1_000, failed: (err) => this.writeFailed("sync the store to disk", err) });
    }
  }

  /**
   * Opens (or creates) the store. An unreadable file (garbage, truncated, damaged, a newer or
   * foreign schema) is moved aside and an empty store made (`movedAside` says where, the log
   * says why); SHOAL_ERR_STORE when the file cannot be opened or written at all.
   */
  static open(file: string, options: WorkflowStoreOptions = {}): WorkflowStore {
    const mode = options.sync ?? "group";
    if (!SYNC_MODES.includes(mode)) throw new ShoalError("SHOAL_ERR_STORE", `the store's sync must be ${SYNC_MODES.join(", ")} (SHOAL_STORE_SYNC), not "${mode}"`);
    const { db, movedAside } = openStoreFile(file, options.logger ?? silentLogger, { synchronous: mode === "full" ? "FULL" : "NORMAL" });
    try {
      // The file and its WAL exist now; their names are durable once the directory is synced.
      if (file !== ":memory:" && mode !== "off") syncDir(dirname(file));
      return new WorkflowStore(db, file, mode, options, movedAside);
    } catch (err) {
      db.close();
      throw new ShoalError("SHOAL_ERR_STORE", `cannot open the workflow store ${file}: ${(err as Error).message}`, { cause: err });
    }
  }

  get stats(): WorkflowStoreStats {
    return {
      commits: this.commits,
      syncs: this.mode === "full" ? this.commits : (this.sync?.syncs ?? 0),
      writeFailures: this.writeFailures,
      writable: this.outage === undefined,
      deferredWrites: this.outage?.deferred.length ?? 0,
      movedAside: this.movedAside === undefined ? 0 : 1,
    };
  }

  /**
   * A workflow this node accepted: resolves once it is stored and synced (with the other
   * submissions of this turn: one transaction, one sync). Rejects with
   * SHOAL_ERR_STORE_UNAVAILABLE (503, retry hint) while the store cannot be written, or if this
   * write or its sync fails; nothing of it is kept then.
   */
  started(wf: Omit<StoredWorkflow, "records" | "resumes">): Promise<void> {
    if (this.outage) return Promise.reject(this.unavailable());
    return new Promise((resolve, reject) => {
      this.starts.push({ wf, resolve, reject });
      if (this.starts.length === 1) setImmediate(() => this.commitStarts());
      else if (this.starts.length >= MAX_GROUP) this.commitStarts();
    });
  }

  /** Resolves once everything written so far is on disk; rejects (SHOAL_ERR_STORE_UNAVAILABLE) while it cannot be. */
  synced(): Promise<void> {
    this.commitStarts();
    if (this.outage) return Promise.reject(this.unavailable());
    return this.durable();
  }

  /** The latest records of instances that changed, for any number of workflows, in one transaction. */
  saveRecords(changes: { workflowId: string; record: InstanceRecord }[]): void {
    if (changes.length === 0) return;
    const rows = changes.map(({ workflowId, record }) => ({ workflowId, id: record.id, json: JSON.stringify(record) }));
    this.write("store workflow progress", () => this.stmts.upsertRecords(rows));
  }

  /** A workflow ended: its final state and result replace its instance rows. */
  ended(wf: Omit<EndedWorkflow, "owner" | "epoch">): void {
    const row = { id: wf.id, endedAt: wf.endedAt, state: JSON.stringify(wf.state), result: JSON.stringify(wf.result) };
    this.write("store the end of a workflow", () => this.stmts.end(row));
  }

  /**
   * Resumes of these workflows begin: each one's count goes up by one, committed (one
   * transaction) before the caller restores any of them, so a crash on the way leaves it counted.
   */
  resumesBegun(ids: string[]): void {
    if (ids.length === 0) return;
    this.write("count a resume", () => this.stmts.resumesBegun(ids));
  }

  /** The workflow has run long enough after its resume: it is no longer suspected of crashing its node. */
  resumeSurvived(id: string): void {
    this.write("clear a resume count", () => this.stmts.resumeSurvived.run(id));
  }

  /** Owner and epoch of a workflow this store knows, owned or replicated. */
  ownership(id: string): Ownership | undefined {
    const deferred = this.outage?.owners;
    if (deferred?.has(id)) return deferred.get(id) ?? undefined;
    return this.read("read a workflow's owner", () => this.stmts.selectOwnership.get(id) as Ownership | undefined);
  }

  /** Workflows `owner` took over (epoch above 1), running or ended, with their epochs. */
  takenOverBy(owner: string): { id: string; epoch: number }[] {
    const stored = this.read("read taken-over workflows", () => this.stmts.selectTakenOver.all(owner) as { id: string; epoch: number }[]);
    const deferred = this.outage?.owners;
    if (!deferred) return stored;
    const kept = stored.filter((wf) => !deferred.has(wf.id));
    for (const [id, o] of deferred) if (o && o.owner === owner && o.epoch > 1) kept.push({ id, epoch: o.epoch });
    return kept;
  }

  /** Makes `owner` the owner of a workflow at `epoch` (a takeover). */
  claim(id: string, owner: string, epoch: number): void {
    this.write("claim a workflow", () => this.stmts.claim.run(owner, epoch, id), [[id, { owner, epoch }]]);
  }

  /**
   * Applies an owner's write to the replica kept here. Refused (`fenced`) when this store knows
   * the workflow at a higher epoch: the sender is an owner that was replaced. Throws
   * SHOAL_ERR_STORE_UNAVAILABLE while the store cannot be written: a copy this node cannot
   * keep is not taken.
   */
  replicate(op: WorkflowReplica, ownerName: (nodeId: string) => string): WorkflowReplicaAnswer {
    this.commitStarts();
    if (this.outage) throw this.unavailable();
    try {
      const known = this.stmts.selectOwnership.get(op.workflow_id) as Ownership | undefined;
      const news = compareOwnership(known, op);
      if (known && (news === "stale" || news === "rival")) {
        return { fenced: { workflow_id: op.workflow_id, owner: known.owner, owner_name: ownerName(known.owner), epoch: known.epoch } };
      }
      if (op.op === "records" && !known) return { unknown: true };
      if (op.op === "ended" && op.state && op.result) {
        // Kept ended, readable while its owner is down; a row is made if the copy was never sent (an end after a restart).
        const json = { state: JSON.stringify(op.state), result: JSON.stringify(op.result) };
        this.stmts.keepEnded({ id: op.workflow_id, owner: op.owner, epoch: op.epoch, endedAt: op.ended_at ?? Date.now(), ...json });
      } else if (op.op === "ended" && !known) return { stored: true };
      else if (op.op === "ended") this.stmts.forget(op.workflow_id);
      else if (op.op === "records") this.stmts.replicaRecords(op);
      else this.stmts.replaceReplica(op);
      this.committed();
      return { stored: true };
    } catch (err) {
      throw this.writeFailed("store a replica", err);
    }
  }

  /** Workflows owned by `owner` that have not ended, oldest first, with their latest records. */
  unfinished(owner: string): StoredWorkflow[] {
    const rows = this.read("read unfinished workflows", () =>
      (this.stmts.selectUnfinished.all(owner) as WorkflowRow[]).filter((row) => !this.accepting.has(row.id)).map((row) => this.load(row)),
    );
    const deferred = this.outage?.owners;
    return deferred ? rows.filter((wf) => !deferred.has(wf.id) || deferred.get(wf.id)?.owner === owner) : rows;
  }

  /** Ended workflows, owned ones and copies kept for other owners, oldest first. */
  endedWorkflows(): EndedWorkflow[] {
    const rows = this.read("read ended workflows", () => this.stmts.selectEnded.all() as EndedRow[]);
    return rows.map(endedOf);
  }

  /** Owners other than `self` of the unfinished copies kept here. */
  copyOwners(self: string): string[] {
    return this.read("read the owners of copies", () => (this.stmts.selectCopyOwners.all(self) as { owner: string }[]).map((r) => r.owner));
  }

  /** What this store keeps of `owner`'s workflows: for an owner that lost its own store. */
  copiesOf(owner: string): { ended: EndedWorkflow[]; running: StoredWorkflow[] } {
    const ended = this.read("read ended copies", () => (this.stmts.selectEndedOf.all(owner) as EndedRow[]).map(endedOf));
    return { ended, running: this.unfinished(owner) };
  }

  /**
   * The node `self` starts with this store: workflows from a version-1 store become its own, and
   * the unfinished replicas of every other owner are dropped. A node that was down missed their
   * updates, and their owners have picked other backups meanwhile; they send it fresh copies if
   * it is their backup again. Ended copies are kept: they no longer change. Returns how many
   * replicas were dropped.
   */
  startedBy(self: string): number {
    const ids = this.read("read the copies kept for other owners", () => (this.stmts.selectReplicaIds.all(self) as { id: string }[]).map((r) => r.id));
    this.write("prepare the store", () => this.stmts.startedBy(self, ids), ids.map((id) => [id, null]));
    return ids.length;
  }

  /** Drops a workflow (an ended one past its retention, or one another node owns now). */
  forget(id: string): void {
    this.write("drop a workflow", () => this.stmts.forget(id), [[id, null]]);
  }

  /** Stores what waits (one more try if the store could not be written) and syncs it. */
  close(): void {
    if (!this.db.open) return;
    this.commitStarts();
    if (this.outage) this.probe();
    const lost = this.outage?.deferred.length ?? 0;
    if (this.outage) {
      clearInterval(this.outage.timer);
      this.log.error({ file: this.file, lost }, "the workflow store still cannot be written at shutdown: what the running workflows did since it failed is lost");
    }
    this.sync?.close();
    this.db.close();
  }

  private load(row: WorkflowRow): StoredWorkflow {
    const records: Record<string, InstanceRecord> = {};
    for (const r of this.stmts.selectRecords.all(row.id) as { id: string; record: string }[]) records[r.id] = JSON.parse(r.record);
    return { id: row.id, owner: row.owner, epoch: row.epoch, spec: JSON.parse(row.spec), instances: JSON.parse(row.instances), startedAt: row.started_at, records, resumes: row.resumes };
  }

  /** The submissions waiting for this turn's transaction, committed now (before any other write or read, which must see them). */
  private commitStarts(): void {
    if (this.starts.length === 0) return;
    const group = this.starts.splice(0);
    if (this.outage) {
      for (const s of group) s.reject(this.unavailable());
      return;
    }
    let refused: (unknown | undefined)[];
    try {
      refused = this.stmts.insertWorkflows(group.map((s) => s.wf));
      this.commits++;
    } catch (err) {
      const failure = this.writeFailed("store new workflows", err, false);
      for (const s of group) s.reject(failure);
      return;
    }
    const stored = group.filter((s, i) => {
      if (refused[i] !== undefined) s.reject(new ShoalError("SHOAL_ERR_STORE", `could not store a new workflow: ${(refused[i] as Error).message}`, { cause: refused[i] }));
      return refused[i] === undefined;
    });
    for (const s of stored) this.accepting.add(s.wf.id);
    this.durable().then(
      () => {
        for (const s of stored) s.resolve();
        // Once the submitters have run on (they start the workflows in the microtasks after this).
        setImmediate(() => {
          for (const s of stored) this.accepting.delete(s.wf.id);
        });
      },
      (err: unknown) => {
        // Committed but perhaps not on disk: not accepted, so not kept either.
        for (const s of stored) {
          this.accepting.delete(s.wf.id);
          this.forget(s.wf.id);
        }
        for (const s of stored) s.reject(this.unavailable(err));
      },
    );
  }

  private durable(): Promise<void> {
    return this.sync?.synced() ?? Promise.resolve();
  }

  private committed(): void {
    this.commits++;
    this.sync?.wrote();
  }

  /** A write of a running workflow: done now, or kept (with what it changes of `owners`) while the store cannot be written. */
  private write(what: string, op: () => void, owners: [string, Ownership | null][] = []): void {
    this.commitStarts();
    if (!this.outage) {
      try {
        op();
        this.committed();
        return;
      } catch (err) {
        this.writeFailed(what, err);
      }
    }
    const outage = this.outage as Outage;
    outage.deferred.push({ what, op });
    for (const [id, o] of owners) outage.owners.set(id, o);
  }

  private read<T>(what: string, fn: () => T): T {
    this.commitStarts();
    try {
      return fn();
    } catch (err) {
      throw new ShoalError("SHOAL_ERR_STORE", `could not ${what}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * A write failed. The disk's trouble makes the store unwritable until a probe gets through
   * (returns SHOAL_ERR_STORE_UNAVAILABLE for the caller); anything else is this write's own
   * problem and is thrown as SHOAL_ERR_STORE, unless `throwOthers` is false.
   */
  private writeFailed(what: string, err: unknown, throwOthers = true): ShoalError {
    const disk = isDiskTrouble(err) || typeof (err as NodeJS.ErrnoException).errno === "number";
    if (!disk) {
      const failure = new ShoalError("SHOAL_ERR_STORE", `could not ${what}: ${(err as Error).message}`, { cause: err });
      if (throwOthers) throw failure;
      return failure;
    }
    if (!this.outage) {
      this.writeFailures++;
      const timer = setInterval(() => this.probe(), this.options.probeMs ?? 1_000).unref();
      this.outage = { since: performance.now(), deferred: [], owners: new Map(), timer };
      this.log.error(
        { err, file: this.file, failed: what },
        "the workflow store cannot be written: new workflows are refused (503 SHOAL_ERR_STORE_UNAVAILABLE) until it can; running ones go on in memory and are stored then",
      );
    }
    return this.unavailable(err);
  }

  /** While unwritable: writes what waits, in order, in one transaction; once that commits, the store is writable again. */
  private probe(): void {
    const outage = this.outage;
    if (!outage) return;
    let skipped = 0;
    try {
      this.stmts.replay(outage.deferred, (what, err) => {
        skipped++;
        this.log.error({ err, failed: what }, "a write kept while the store could not be written fails on its own: it is dropped");
      });
    } catch (err) {
      this.limiter.warn({ err, file: this.file, deferred: outage.deferred.length }, "the workflow store still cannot be written");
      return;
    }
    clearInterval(outage.timer);
    this.outage = undefined;
    this.committed();
    this.log.warn(
      { file: this.file, stored: outage.deferred.length - skipped, outageMs: Math.round(performance.now() - outage.since) },
      "the workflow store can be written again: what the running workflows did meanwhile is stored; new workflows are accepted again",
    );
    // On disk now; a sync that fails makes it unwritable again.
    this.durable().catch(() => {});
  }

  private unavailable(cause?: unknown): ShoalError {
    return new ShoalError("SHOAL_ERR_STORE_UNAVAILABLE", `the workflow store ${this.file} cannot be written (disk full, read-only or failing); try again later`, {
      retryAfterMs: RETRY_AFTER_MS,
      ...(cause !== undefined && { cause }),
    });
  }
}

type EndedRow = { id: string; owner: string; epoch: number; ended_at: number; state: string; result: string };
const endedOf = (row: EndedRow): EndedWorkflow => ({ id: row.id, owner: row.owner, epoch: row.epoch, endedAt: row.ended_at, state: JSON.parse(row.state), result: JSON.parse(row.result) });

function prepare(db: Database.Database) {
  const endWorkflow = db.prepare("UPDATE workflows SET ended_at = ?, state = ?, result = ?, resumes = 0 WHERE id = ?");
  const deleteRecords = db.prepare("DELETE FROM instances WHERE workflow_id = ?");
  const deleteWorkflow = db.prepare("DELETE FROM workflows WHERE id = ?");
  const insertWorkflow = db.prepare("INSERT INTO workflows (id, owner, epoch, spec, instances, started_at) VALUES (?, ?, ?, ?, ?, ?)");
  const upsertRecord = db.prepare("INSERT INTO instances (workflow_id, id, record) VALUES (?, ?, ?) ON CONFLICT (workflow_id, id) DO UPDATE SET record = excluded.record");
  const upsertWorkflow = db.prepare(
    `INSERT INTO workflows (id, owner, epoch, spec, instances, started_at, resumes) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, epoch = excluded.epoch, spec = excluded.spec, instances = excluded.instances, started_at = excluded.started_at, ended_at = NULL, resumes = excluded.resumes`,
  );
  const setResumes = db.prepare("UPDATE workflows SET resumes = ? WHERE id = ?");
  const upsertEnded = db.prepare(
    `INSERT INTO workflows (id, owner, epoch, spec, instances, started_at, ended_at, state, result) VALUES (@id, @owner, @epoch, 'null', '[]', @endedAt, @endedAt, @state, @result)
     ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, epoch = excluded.epoch, ended_at = excluded.ended_at, state = excluded.state, result = excluded.result, resumes = 0`,
  );
  const countResume = db.prepare("UPDATE workflows SET resumes = resumes + 1 WHERE id = ?");
  const adoptLegacy = db.prepare("UPDATE workflows SET owner = ? WHERE owner = ''");
  const touch = db.prepare(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  const forget = db.transaction((id: string) => {
    deleteRecords.run(id);
    deleteWorkflow.run(id);
  });
  // Transaction functions are made once: better-sqlite3 prepares BEGIN and COMMIT for each.
  return {
    /** One transaction for the group; an insert refused for its own sake (a duplicate id) is that one's error, the rest go in. */
    insertWorkflows: db.transaction((wfs: Omit<StoredWorkflow, "records" | "resumes">[]) =>
      wfs.map((wf) => {
        try {
          insertWorkflow.run(wf.id, wf.owner, wf.epoch, JSON.stringify(wf.spec), JSON.stringify(wf.instances), wf.startedAt);
          return undefined;
        } catch (err) {
          if (isDiskTrouble(err)) throw err;
          return err;
        }
      }),
    ),
    upsertRecords: db.transaction((rows: { workflowId: string; id: string; json: string }[]) => {
      for (const r of rows) upsertRecord.run(r.workflowId, r.id, r.json);
    }),
    replicaRecords: db.transaction((op: Extract<WorkflowReplica, { op: "records" }>) => {
      for (const record of op.records) upsertRecord.run(op.workflow_id, record.id, JSON.stringify(record));
      if (op.resumes !== undefined) setResumes.run(op.resumes, op.workflow_id);
    }),
    resumesBegun: db.transaction((ids: string[]) => {
      for (const id of ids) countResume.run(id);
    }),
    resumeSurvived: db.prepare("UPDATE workflows SET resumes = 0 WHERE id = ?"),
    end: db.transaction((wf: { id: string; endedAt: number; state: string; result: string }) => {
      endWorkflow.run(wf.endedAt, wf.state, wf.result, wf.id);
      deleteRecords.run(wf.id);
    }),
    keepEnded: db.transaction((wf: { id: string; owner: string; epoch: number; endedAt: number; state: string; result: string }) => {
      upsertEnded.run(wf);
      deleteRecords.run(wf.id);
    }),
    replaceReplica: db.transaction((op: Extract<WorkflowReplica, { op: "started" }>) => {
      upsertWorkflow.run(op.workflow_id, op.owner, op.epoch, JSON.stringify(op.spec), JSON.stringify(op.instances), op.started_at, op.resumes ?? 0);
      deleteRecords.run(op.workflow_id);
      for (const record of op.records) upsertRecord.run(op.workflow_id, record.id, JSON.stringify(record));
    }),
    startedBy: db.transaction((self: string, replicaIds: string[]) => {
      adoptLegacy.run(self);
      for (const id of replicaIds) forget(id);
    }),
    /**
     * The writes kept while the store could not be written, in order, in one transaction (with
     * a write of its own, so that a probe with nothing kept still tries the disk). The disk's
     * trouble undoes it all; a write that fails on its own is reported and left out.
     */
    replay: db.transaction((deferred: { what: string; op: () => void }[], dropped: (what: string, err: unknown) => void) => {
      touch.run();
      for (const { what, op } of deferred) {
        try {
          op();
        } catch (err) {
          if (isDiskTrouble(err)) throw err;
          dropped(what, err);
        }
      }
    }),
    forget,
    claim: db.prepare("UPDATE workflows SET owner = ?, epoch = ? WHERE id = ?"),
    selectOwnership: db.prepare("SELECT owner, epoch FROM workflows WHERE id = ?"),
    selectTakenOver: db.prepare("SELECT id, epoch FROM workflows WHERE owner = ? AND epoch > 1"),
    // Version 1's workflows ('' as owner) are the node's own, not replicas.
    selectReplicaIds: db.prepare("SELECT id FROM workflows WHERE owner <> ? AND owner <> '' AND ended_at IS NULL"),
    selectCopyOwners: db.prepare("SELECT DISTINCT owner FROM workflows WHERE ended_at IS NULL AND owner <> ?"),
    selectUnfinished: db.prepare("SELECT id, owner, epoch, spec, instances, started_at, resumes FROM workflows WHERE ended_at IS NULL AND owner = ? ORDER BY started_at, id"),
    selectRecords: db.prepare("SELECT id, record FROM instances WHERE workflow_id = ?"),
    selectEnded: db.prepare("SELECT id, owner, epoch, ended_at, state, result FROM workflows WHERE ended_at IS NOT NULL ORDER BY ended_at, id"),
    selectEndedOf: db.prepare("SELECT id, owner, epoch, ended_at, state, result FROM workflows WHERE ended_at IS NOT NULL AND owner = ? ORDER BY ended_at, id"),
  };
}
