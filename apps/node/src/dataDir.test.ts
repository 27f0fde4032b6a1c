import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAX_INCARNATION } from "@shoal/protocol";
import { describe, expect, it } from "vitest";
import { openDataDir } from "./dataDir.js";

const dir = () => join(mkdtempSync(join(tmpdir(), "dd-")), "node");

describe("openDataDir", () => {
  it("creates an id once and keeps it across openings", () => {
    const path = dir();
    const first = openDataDir(path);
    first.release();
    const second = openDataDir(path);
    second.release();
    expect(second.nodeId).toBe(first.nodeId);
    expect(readFileSync(join(path, "node-id"), "utf8").trim()).toBe(first.nodeId);
  });

  it("refuses a data dir locked by a live process", () => {
    const path = dir();
    const held = openDataDir(path);
    // The lock names this process, which is alive; pretend another live process holds it.
    writeFileSync(join(path, "node.lock"), String(process.ppid));
    expect(() => openDataDir(path)).toThrow(expect.objectContaining({ code: "SHOAL_ERR_DATA_DIR_LOCKED" }));
    held.release();
  });

  it("takes over a lock left by a process that died", () => {
    const path = dir();
    openDataDir(path); // never released, as after SIGKILL
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout;
    writeFileSync(join(path, "node.lock"), dead);
    const again = openDataDir(path);
    expect(readFileSync(join(path, "node.lock"), "utf8")).toBe(String(process.pid));
    again.release();
  });

  it("starts a new node at incarnation 0 and every later life one above the last one stored", () => {
    const path = dir();
    const reopen = () => {
      const d = openDataDir(path);
      d.release();
      return d;
    };
    expect(reopen().incarnation).toBe(0);
    expect(reopen().incarnation).toBe(1);
    const third = openDataDir(path);
    third.saveIncarnation(41);
    third.release();
    expect(readFileSync(join(path, "incarnation"), "utf8")).toBe("41\n");
    expect(reopen().incarnation).toBe(42);
  });

  it("without a readable incarnation (an older data dir, a damaged file) starts above any a node refuted its way to", () => {
    const path = dir();
    openDataDir(path).release();
    rmSync(join(path, "incarnation"));
    const older = openDataDir(path);
    older.release();
    const secondsSince2020 = Math.floor((Date.now() - Date.UTC(2020, 0, 1)) / 1000);
    expect(older.incarnation).toBeGreaterThanOrEqual(secondsSince2020 - 5);
    expect(older.incarnation).toBeLessThanOrEqual(secondsSince2020);
    for (const damaged of ["", "seven", "-3", "1e9", String(MAX_INCARNATION + 1)]) {
      writeFileSync(join(path, "incarnation"), damaged);
      const d = openDataDir(path);
      d.release();
      expect(d.incarnation, damaged).toBeGreaterThanOrEqual(secondsSince2020 - 5);
    }
  });

  it("stays at the bound once there", () => {
    const path = dir();
    openDataDir(path).release();
    writeFileSync(join(path, "incarnation"), String(MAX_INCARNATION));
    const d = openDataDir(path);
    d.release();
    expect(d.incarnation).toBe(MAX_INCARNATION);
  });
});
