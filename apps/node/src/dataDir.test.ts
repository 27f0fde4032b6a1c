import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
});
