import { randomUUID } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { MAX_INCARNATION, ShoalError } from "@shoal/protocol";

/**
 * The node's data dir: holds its id, so a restarted node is the same member; its incarnation,
 * so a restarted node outbids its last life without learning it from peers (who could lie); and
 * a lock file, so two processes never run as the same node.
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
  const lockFile = join(path, "node.lock");
  takeLock(lockFile);
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
      rmSync(lockFile, { force: true });
    },
  };
}

/**
 * One above the stored incarnation. Without a readable one, a number of seconds since 2020: above
 * anything a node raised to by refutations, so its peers take its record as the newest.
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

function takeLock(lockFile: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockFile, String(process.pid), { flag: "wx" });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = Number(readFileSync(lockFile, "utf8").trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
      throw new ShoalError("SHOAL_ERR_DATA_DIR_LOCKED", `data dir is in use by process ${holder} (${lockFile})`);
    }
    // Left behind by a node that was killed: take it over.
    rmSync(lockFile, { force: true });
  }
  throw new ShoalError("SHOAL_ERR_DATA_DIR_LOCKED", `cannot take the lock ${lockFile}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
