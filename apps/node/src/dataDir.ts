import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ShoalError } from "@shoal/protocol";

/**
 * The node's data dir: holds its id, so a restarted node is the same member, and a lock file,
 * so two processes never run as the same node.
 */
export interface DataDir {
  path: string;
  nodeId: string;
  release(): void;
}

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
  try {
    nodeId = readFileSync(idFile, "utf8").trim();
  } catch {
    nodeId = randomUUID();
    writeFileSync(idFile, `${nodeId}\n`);
  }
  return {
    path,
    nodeId,
    release() {
      rmSync(lockFile, { force: true });
    },
  };
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
