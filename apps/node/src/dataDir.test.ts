import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

  it("refuses a data dir another live opener holds, and takes it once that one lets go", () => {
    const path = dir();
    const held = openDataDir(path);
    expect(() => openDataDir(path)).toThrow(expect.objectContaining({ code: "SHOAL_ERR_DATA_DIR_LOCKED" }));
    held.release();
    openDataDir(path).release();
  });

  it("trusts no pid: the lock file of an older version naming a live process does not keep the node out", () => {
    const path = dir();
    openDataDir(path).release();
    writeFileSync(join(path, "node.lock"), String(process.ppid));
    const again = openDataDir(path);
    expect(existsSync(join(path, "node.lock"))).toBe(false);
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
