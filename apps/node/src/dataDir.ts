import { randomUUID } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { MAX_INCARNATION, ShoalError } from "@shoal/protocol";
import Database from "better-sqlite3";

/**
 * The node's data dir: holds its id, so a restarted node is the same member; its incarnation,
 * so a restarted node outbids its last life without learning it from peers (who could lie); and
 * a lock, so two processes never run as the same node.
 */
export interface DataDir {
  path: string;
  nodeId: string;
  /** This life's incarnation: one above the last one stored, already stored. */
  incarnation: number;
  /** Stores a raised incarnation (write, fsync, rename): the next life starts above it. */
  saveIncarnation(incarnation: number): void;
  release(): void;
}

/** Incarnations of a data dir that kept none (made before they were kept, or damaged) start here. */
const CLOCK_EPOCH_MS = Date.UTC(2020, 0, 1);

export function openDataDir(path: string): DataDir {
  try {
    mkdirSync(path, { recursive: true });
  } catch (err) {
    throw new ShoalError("SHOAL_ERR_BAD_FLAG", `--data-dir ${path}: ${(err as Error).message}`, { cause: err });
  }
  const lock = takeLock(path);
  const idFile = join(path, "node-id");
  let nodeId: string;
  let newNode = false;
  try {
    nodeId = readFileSync(idFile, "utf8").trim();
  } catch {
    nodeId = randomUUID();
    newNode = true;
    writeFileSync(idFile, `${nodeId}\n`);
  }
  const incarnationFile = join(path, "incarnation");
  const incarnation = newNode ? 0 : nextIncarnation(incarnationFile);
  const saveIncarnation = (n: number) => writeAtomically(incarnationFile, `${n}\n`);
  saveIncarnation(incarnation);
  return {
    path,
    nodeId,
    incarnation,
    saveIncarnation,
    release() {
      lock.close();
    },
  };
}

/**
 * One above the stored incarnation. Without a readable one, a number of seconds since 2020: above
 * anything a node raised to by refutations, so its peers take its record as the newest (wall
 * time by design: it must exceed what an earlier life of the node used).
 */
function nextIncarnation(file: string): number {
  let text = "";
  try {
    text = readFileSync(file, "utf8").trim();
  } catch {
    // none kept: treated as a damaged one
  }
  const stored = /^\d{1,10}$/.test(text) ? Number(text) : Number.NaN;
  if (Number.isNaN(stored) || stored > MAX_INCARNATION) return Math.floor((Date.now() - CLOCK_EPOCH_MS) / 1000);
  return Math.min(stored + 1, MAX_INCARNATION);
}

/** Whole or not at all, and on the disk before it counts: a crash never leaves half a file or an old one. */
function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  // The rename itself is on the disk once the directory is.
  const dir = openSync(dirname(file), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/**
 * The data dir's lock: an exclusive SQLite lock (an fcntl lock the kernel holds for this process)
 * on `data-dir.lock`. It goes with the process however it ends, SIGKILL and power cuts included,
 * so a node always starts again; no pid is trusted, so neither a dead process not yet reaped nor
 * a pid reused after a reboot keeps it out. A second live process is refused at once.
 */
function takeLock(dir: string): Database.Database {
  // The pid file of older versions locks nothing any more.
  rmSync(join(dir, "node.lock"), { force: true });
  const file = join(dir, "data-dir.lock");
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { timeout: 0 });
    db.pragma("locking_mode = EXCLUSIVE");
    // The first write under EXCLUSIVE locking takes the lock, and it is kept until close.
    db.exec(`CREATE TABLE IF NOT EXISTS lock (pid INTEGER); BEGIN EXCLUSIVE; DELETE FROM lock; INSERT INTO lock VALUES (${process.pid}); COMMIT;`);
    return db;
  } catch (err) {
    db?.close();
    const code = (err as { code?: string }).code;
    if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") {
      throw new ShoalError("SHOAL_ERR_DATA_DIR_LOCKED", `data dir ${dir} is in use by another running node (it holds ${file})`, { cause: err });
    }
    throw new ShoalError("SHOAL_ERR_BAD_FLAG", `--data-dir ${dir}: cannot lock ${file}: ${(err as Error).message}`, { cause: err });
  }
}
