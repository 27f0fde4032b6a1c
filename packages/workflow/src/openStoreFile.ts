import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync } from "node:fs";
import { basename, dirname } from "node:path";
import { type Logger, ShoalError } from "@shoal/protocol";
import Database from "better-sqlite3";

export const SCHEMA_VERSION = 3;

/** The columns of version 1, which every version has, and of the current version. */
const COLUMNS = {
  v1: { workflows: ["id", "spec", "instances", "started_at", "ended_at", "state", "result"], instances: ["workflow_id", "id", "record"] },
  now: { workflows: ["id", "owner", "epoch", "spec", "instances", "started_at", "ended_at", "state", "result", "resumes"], instances: ["workflow_id", "id", "record"] },
};

/** A file that cannot be the workflow store: garbage, truncated, damaged, or another schema. */
class Unreadable extends Error {}

/** SQLite's word for a file that is not (or no longer) a readable database. */
const CORRUPT = /^SQLITE_(NOTADB|CORRUPT)/;

export interface OpenedStoreFile {
  db: Database.Database;
  /** Where an unreadable file was moved, if it was (the node then starts with an empty store). */
  movedAside?: string;
}

/**
 * Opens the workflow store's SQLite file, creating or upgrading it. A file that cannot be read
 * as a version-1..3 store (not a database, truncated or damaged, a newer or a foreign schema) is
 * moved aside as `<file>.corrupt-<time>` (with its WAL), said in one error line, and an empty
 * store is made in its place: the node starts and serves, and what was moved is kept for
 * whoever wants to look at it. A file that cannot be opened or written at all (permissions, a
 * full or read-only disk) is not touched: SHOAL_ERR_STORE.
 */
export function openStoreFile(file: string, logger: Logger, options: { synchronous: "NORMAL" | "FULL" }): OpenedStoreFile {
  if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
  try {
    return { db: openChecked(file, options.synchronous) };
  } catch (err) {
    if (!(err instanceof Unreadable || CORRUPT.test(String((err as { code?: unknown }).code)))) throw storeError(file, err);
    const movedAside = moveAside(file);
    logger.error(
      { err, file, movedAside },
      `${basename(file)} could not be read as a workflow store (${(err as Error).message}): moved aside to ${basename(movedAside)}; this node starts with an empty store`,
    );
    try {
      return { db: openChecked(file, options.synchronous), movedAside };
    } catch (again) {
      throw storeError(file, again);
    }
  }
}

function storeError(file: string, err: unknown): ShoalError {
  return err instanceof ShoalError ? err : new ShoalError("SHOAL_ERR_STORE", `cannot open the workflow store ${file}: ${(err as Error).message}`, { cause: err });
}

function openChecked(file: string, synchronous: "NORMAL" | "FULL"): Database.Database {
  const db = new Database(file);
  try {
    // One process per data dir (its lock says so): holding SQLite's lock for good saves the
    // lock calls of every transaction, and with WAL it needs no shared-memory file.
    db.pragma("locking_mode = EXCLUSIVE");
    // Checked before anything is written, so that a file moved aside is as it was found.
    const version = db.pragma("user_version", { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw new Unreadable(`it has workflow store version ${version}; this node reads versions up to ${SCHEMA_VERSION}`);
    // Every page read once: a file cut short or overwritten in the middle shows here, at start,
    // not as a failed read of some workflow later.
    const check = db.pragma("quick_check", { simple: true });
    if (check !== "ok") throw new Unreadable(`quick_check: ${String(check).split("\n").slice(0, 2).join("; ")}`);
    checkColumns(db, COLUMNS.v1, false);
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${synchronous}`);
    migrate(db, version);
    checkColumns(db, COLUMNS.now, true);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Tables under our names whose columns are not ours: another program's file, or a damaged schema. */
function checkColumns(db: Database.Database, tables: Record<string, string[]>, mustExist: boolean): void {
  for (const [table, columns] of Object.entries(tables)) {
    const have = new Set((db.pragma(`table_info(${table})`) as { name: string }[]).map((c) => c.name));
    if (have.size === 0 && !mustExist) continue;
    const missing = columns.filter((c) => !have.has(c));
    if (missing.length > 0) throw new Unreadable(`its table ${table} has no column ${missing.join(", ")}`);
  }
}

function migrate(db: Database.Database, version: number): void {
  try {
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
  } catch (err) {
    // Tables of another shape under our names (a duplicate column, a missing table's index).
    if ((err as { code?: unknown }).code === "SQLITE_ERROR") throw new Unreadable(`its schema is not a workflow store's: ${(err as Error).message}`);
    throw err;
  }
}

/** Renames the file and its WAL (which only means something next to it) out of the way, durably. */
function moveAside(file: string): string {
  const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  renameSync(file, aside);
  for (const suffix of ["-wal", "-shm"]) if (existsSync(file + suffix)) renameSync(file + suffix, aside + suffix);
  syncDir(dirname(file));
  return aside;
}

/** Makes the names in a directory durable (a new or renamed file is not, until its directory is synced). */
export function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
