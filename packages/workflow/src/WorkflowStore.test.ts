import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Logger, type WorkflowResult, type WorkflowState, silentLogger } from "@shoal/protocol";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { WorkflowStore } from "./WorkflowStore.js";
import type { InstanceRecord } from "./workflowMachine.js";

const open: WorkflowStore[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});
const fileIn = (dir = mkdtempSync(join(tmpdir(), "shoal-store-"))) => join(dir, "workflows.db");
const storeAt = (file: string) => {
  const store = WorkflowStore.open(file);
  open.push(store);
  return store;
};

const nextTurn = () => new Promise((r) => setImmediate(r));
/** Workflows accepted, as their submitter sees it: stored, synced, and handed back (a turn later they are the store's to resume). */
const accepted = async (store: WorkflowStore, ...wfs: Parameters<WorkflowStore["started"]>[0][]) => {
  await Promise.all(wfs.map((wf) => store.started(wf)));
  await nextTurn();
};

/** A logger that keeps the messages of its error and warn lines. */
const capture = () => {
  const lines: { level: string; msg: string }[] = [];
  const at =
    (level: string) =>
    (_obj: unknown, msg?: string): void => {
      lines.push({ level, msg: msg ?? "" });
    };
  const logger: Logger = { ...silentLogger, error: at("error"), warn: at("warn") };
  return { logger, lines };
};

const spec = { name: "t", steps: [{ id: "a", tool: "echo" }, { id: "b", tool: "echo", needs: ["a"] }] };
const instances = [
  { id: "a", step: "a", logic: "echo", placement: {} },
  { id: "b", step: "b", logic: "echo", placement: {} },
];
const record = (id: string, extra: Partial<InstanceRecord> = {}): InstanceRecord => ({
  id,
  step: id,
  logic: "echo",
  status: "pending",
  node: null,
  attempts: 0,
  startedAt: null,
  endedAt: null,
  spawned: false,
  actor: null,
  ...extra,
});

describe("WorkflowStore", () => {
  it("keeps a workflow's spec, plan and latest records across a reopen of the file", () => {
    const file = fileIn();
    const first = storeAt(file);
    first.started({ id: "wf_1", owner: "me", epoch: 1, spec, instances, startedAt: 1_000 });
    first.saveRecords([{ workflowId: "wf_1", record: record("a", { status: "running", attempts: 1, node: "n1" }) }]);
    first.saveRecords([
      { workflowId: "wf_1", record: record("a", { status: "complete", attempts: 1, node: "n1", result: { v: 1 }, endedAt: 2_000 }) },
      { workflowId: "wf_1", record: record("b", { status: "running", attempts: 2, node: "n2" }) },
    ]);
    first.close();
    const again = storeAt(file);
    expect(again.unfinished("me")).toEqual([
      {
        id: "wf_1",
        owner: "me",
        epoch: 1,
        spec,
        instances,
        startedAt: 1_000,
        records: {
          a: record("a", { status: "complete", attempts: 1, node: "n1", result: { v: 1 }, endedAt: 2_000 }),
          b: record("b", { status: "running", attempts: 2, node: "n2" }),
        },
        resumes: 0,
      },
    ]);
    expect(again.endedWorkflows()).toEqual([]);
  });

  it("an ended workflow keeps its final state and result instead of its records, until forgotten", async () => {
    const store = storeAt(fileIn());
    await accepted(store, { id: "wf_1", owner: "me", epoch: 1, spec, instances, startedAt: 1 }, { id: "wf_2", owner: "me", epoch: 1, spec, instances, startedAt: 2 });
    store.saveRecords([{ workflowId: "wf_1", record: record("a", { status: "complete" }) }]);
    const state = { workflow_id: "wf_1", status: "complete" } as unknown as WorkflowState;
    const result = { workflow_id: "wf_1", status: "complete" } as unknown as WorkflowResult;
    store.ended({ id: "wf_1", endedAt: 5, state, result });
    expect(store.endedWorkflows()).toEqual([{ id: "wf_1", owner: "me", epoch: 1, endedAt: 5, state, result }]);
    expect(store.unfinished("me").map((w) => w.id)).toEqual(["wf_2"]);
    store.forget("wf_1");
    expect(store.endedWorkflows()).toEqual([]);
    expect(store.unfinished("me").map((w) => w.id)).toEqual(["wf_2"]);
  });

  it("moves an unreadable file aside (garbage, cut short, damaged inside, a newer or a foreign schema), says so once, and starts empty", () => {
    const dir = mkdtempSync(join(tmpdir(), "shoal-store-"));
    const full = () => {
      const file = join(dir, `full-${Math.random().toString(36).slice(2)}.db`);
      const store = WorkflowStore.open(file);
      for (let i = 0; i < 300; i++) store.started({ id: `wf_${i}`, owner: "me", epoch: 1, spec: { pad: "x".repeat(500) }, instances, startedAt: i });
      store.close();
      return file;
    };
    const cases: [string, () => string, RegExp][] = [
      ["garbage", () => {
        const file = join(dir, "garbage.db");
        writeFileSync(file, "this is not a database, just some text that is long enough to look like a header...".repeat(20));
        return file;
      }, /not a database/],
      ["cut short", () => {
        const file = full();
        truncateSync(file, Math.floor(statSync(file).size / 2));
        return file;
      }, /malformed/],
      ["damaged inside", () => {
        const file = full();
        const bytes = readFileSync(file);
        bytes.fill(0x5a, 8192, 12288);
        writeFileSync(file, bytes);
        return file;
      }, /quick_check|malformed/],
      ["newer", () => {
        const file = join(dir, "newer.db");
        const db = new Database(file);
        db.pragma("user_version = 99");
        db.close();
        return file;
      }, /version 99; this node reads versions up to 3/],
      ["foreign", () => {
        const file = join(dir, "foreign.db");
        const db = new Database(file);
        db.exec("CREATE TABLE workflows (name TEXT); CREATE TABLE instances (x TEXT)");
        db.pragma("user_version = 3");
        db.close();
        return file;
      }, /table workflows has no column id/],
    ];
    for (const [what, make, reason] of cases) {
      const file = make();
      const before = readFileSync(file);
      const { logger, lines } = capture();
      const store = WorkflowStore.open(file, { logger });
      open.push(store);
      expect(store.movedAside, what).toMatch(/\.db\.corrupt-\d{4}-\d\d-\d\dT/);
      expect(readFileSync(store.movedAside as string).equals(before), `${what}: kept as it was`).toBe(true);
      expect(lines, what).toHaveLength(1);
      expect(lines[0]?.msg, what).toMatch(reason);
      expect(lines[0]?.msg, what).toContain("moved aside");
      expect(store.stats.movedAside).toBe(1);
      // Empty, and working.
      expect(store.unfinished("me")).toEqual([]);
      store.saveRecords([{ workflowId: "wf_x", record: record("a") }]);
      expect(WorkflowStore.open(":memory:").stats.movedAside).toBe(0);
    }
  });

  it("does not touch a file it cannot open at all: SHOAL_ERR_STORE with a clear reason", () => {
    const dir = mkdtempSync(join(tmpdir(), "shoal-store-"));
    const notAFile = join(dir, "dir.db");
    mkdirSync(notAFile);
    expect(() => WorkflowStore.open(notAFile)).toThrow(expect.objectContaining({ code: "SHOAL_ERR_STORE", message: expect.stringContaining("dir.db") }));
    expect(readdirSync(dir)).toEqual(["dir.db"]);
  });

  it("a write refused for its own sake is a SHOAL_ERR_STORE for it alone, saying what could not be stored", async () => {
    const store = storeAt(fileIn());
    await store.started({ id: "wf_1", owner: "me", epoch: 1, spec, instances, startedAt: 1 });
    // The same id twice, in a group with another: SQLite's constraint error for that one only.
    const again = store.started({ id: "wf_1", owner: "me", epoch: 1, spec, instances, startedAt: 1 });
    const other = store.started({ id: "wf_2", owner: "me", epoch: 1, spec, instances, startedAt: 2 });
    await expect(again).rejects.toMatchObject({ code: "SHOAL_ERR_STORE", message: expect.stringContaining("could not store a new workflow") });
    await expect(other).resolves.toBeUndefined();
    await nextTurn();
    expect(store.unfinished("me").map((w) => w.id)).toEqual(["wf_1", "wf_2"]);
    expect(store.stats.writable).toBe(true);
  });

  it("group commit: the submissions of one turn are one transaction and one sync, each acknowledged once synced", async () => {
    const file = fileIn();
    const store = storeAt(file);
    const before = store.stats;
    let acknowledged = 0;
    const acks = Array.from({ length: 50 }, (_, i) => store.started({ id: `wf_${i}`, owner: "me", epoch: 1, spec, instances, startedAt: i }).then(() => acknowledged++));
    expect(acknowledged).toBe(0);
    await Promise.all(acks);
    expect(store.stats.commits - before.commits).toBe(1);
    expect(store.stats.syncs - before.syncs).toBe(1);
    // While a sync runs, the next turn's submissions wait for the one after it: two more syncs at most.
    const next = Array.from({ length: 20 }, (_, i) => store.started({ id: `wf_next${i}`, owner: "me", epoch: 1, spec, instances, startedAt: 100 + i }));
    await new Promise((r) => setImmediate(r));
    const later = Array.from({ length: 20 }, (_, i) => store.started({ id: `wf_later${i}`, owner: "me", epoch: 1, spec, instances, startedAt: 200 + i }));
    await Promise.all([...next, ...later]);
    expect(store.stats.commits - before.commits).toBe(3);
    expect(store.stats.syncs - before.syncs).toBeLessThanOrEqual(3);
    // Until its submitter has it, an accepted workflow is not one to resume (it would run twice).
    const accepting = store.started({ id: "wf_new", owner: "me", epoch: 1, spec, instances, startedAt: 1_000 });
    await nextTurn();
    expect(store.ownership("wf_new")).toEqual({ owner: "me", epoch: 1 });
    expect(store.unfinished("me").map((w) => w.id)).not.toContain("wf_new");
    await accepting;
    await nextTurn();
    expect(store.unfinished("me").map((w) => w.id)).toContain("wf_new");
    // A progress write waits for nobody: it is synced soon all the same.
    const synced = store.stats.syncs;
    store.saveRecords([{ workflowId: "wf_1", record: record("a", { status: "complete" }) }]);
    await expect.poll(() => store.stats.syncs, { timeout: 3_000 }).toBe(synced + 1);
    // Without sync, nothing is synced: acknowledged at commit.
    const off = WorkflowStore.open(fileIn(), { sync: "off" });
    open.push(off);
    await off.started({ id: "wf_off", owner: "me", epoch: 1, spec, instances, startedAt: 1 });
    expect(off.stats).toMatchObject({ commits: 1, syncs: 0 });
  });
  // RLIMIT_FSIZE on this process: a write that would make a file longer than that fails
  // (EFBIG), as on a full disk; raising it again is the disk recovering. Node ignores SIGXFSZ.
  const prlimit = (() => {
    try {
      execFileSync("prlimit", ["--version"]);
      return true;
    } catch {
      return false;
    }
  })();
  const fileSizeLimit = (bytes: number | "unlimited") => execFileSync("prlimit", ["--pid", String(process.pid), `--fsize=${bytes}:`]);

  it.skipIf(!prlimit)("a write the disk refuses: new workflows refused (503) and replicas too, running ones kept in memory and stored once the disk takes them", async () => {
    const file = fileIn();
    const { logger, lines } = capture();
    const store = WorkflowStore.open(file, { logger, probeMs: 20 });
    open.push(store);
    await store.started({ id: "wf_1", owner: "me", epoch: 1, spec, instances, startedAt: 1 });
    store.replicate({ op: "started", workflow_id: "wf_theirs", owner: "B", epoch: 1, spec, instances, started_at: 2, records: [] }, (id) => id);
    try {
      fileSizeLimit(statSync(`${file}-wal`).size);
      store.saveRecords([{ workflowId: "wf_1", record: record("a", { status: "complete", attempts: 1, result: { big: "x".repeat(8_000) } }) }]);
      expect(store.stats).toMatchObject({ writable: false, writeFailures: 1, deferredWrites: 1 });
      await expect(store.started({ id: "wf_2", owner: "me", epoch: 1, spec, instances, startedAt: 2 })).rejects.toMatchObject({ code: "SHOAL_ERR_STORE_UNAVAILABLE", retryAfterMs: 1_000 });
      await expect(store.synced()).rejects.toMatchObject({ code: "SHOAL_ERR_STORE_UNAVAILABLE" });
      expect(() => store.replicate({ op: "records", workflow_id: "wf_theirs", owner: "B", epoch: 1, records: [record("a")] }, (id) => id)).toThrow(
        expect.objectContaining({ code: "SHOAL_ERR_STORE_UNAVAILABLE" }),
      );
      // What the deferred writes change of who owns what is seen meanwhile.
      store.claim("wf_theirs", "me", 2);
      expect(store.ownership("wf_theirs")).toEqual({ owner: "me", epoch: 2 });
      expect(store.takenOverBy("me")).toEqual([{ id: "wf_theirs", epoch: 2 }]);
      expect(store.unfinished("B")).toEqual([]);
      store.ended({ id: "wf_1", endedAt: 5, state: { status: "complete" } as WorkflowState, result: { status: "complete" } as WorkflowResult });
      store.forget("wf_gone");
      // Probes go on failing: said once, not once a probe.
      await new Promise((r) => setTimeout(r, 150));
      expect(store.stats).toMatchObject({ writable: false, writeFailures: 1, deferredWrites: 4 });
      expect(lines.filter((l) => l.level === "error")).toHaveLength(1);
      expect(lines[0]?.msg).toMatch(/cannot be written: new workflows are refused \(503 SHOAL_ERR_STORE_UNAVAILABLE\)/);
      expect(lines.filter((l) => l.level === "warn").length).toBeLessThanOrEqual(1);
    } finally {
      fileSizeLimit("unlimited");
    }
    await expect.poll(() => store.stats.writable, { timeout: 2_000 }).toBe(true);
    expect(store.stats.deferredWrites).toBe(0);
    expect(lines.at(-1)?.msg).toMatch(/can be written again/);
    await store.started({ id: "wf_3", owner: "me", epoch: 1, spec, instances, startedAt: 3 });
    store.close();
    const again = storeAt(file);
    expect(again.endedWorkflows().map((w) => [w.id, w.state.status])).toEqual([["wf_1", "complete"]]);
    expect(again.ownership("wf_theirs")).toEqual({ owner: "me", epoch: 2 });
    expect(again.unfinished("me").map((w) => w.id)).toEqual(["wf_theirs", "wf_3"]);
    expect(again.ownership("wf_2")).toBeUndefined();
  });

  it("keeps an owner's replica, applies its changes, and fences an owner that was replaced", () => {
    const store = storeAt(fileIn());
    const name = (id: string) => `name-of-${id}`;
    const base = { workflow_id: "wf_abcdef", owner: "A", epoch: 1 };
    // Changes before the whole copy: the owner must send it first.
    expect(store.replicate({ op: "records", ...base, records: [record("a")] }, name)).toEqual({ unknown: true });
    expect(store.replicate({ op: "started", ...base, spec, instances, started_at: 10, records: [record("a", { status: "running" })] }, name)).toEqual({ stored: true });
    expect(store.replicate({ op: "records", ...base, records: [record("a", { status: "complete", result: 1 })] }, name)).toEqual({ stored: true });
    expect(store.unfinished("A")).toEqual([{ id: "wf_abcdef", owner: "A", epoch: 1, spec, instances, startedAt: 10, records: { a: record("a", { status: "complete", result: 1 }) }, resumes: 0 }]);
    expect(store.unfinished("me")).toEqual([]);

    // Taken over here at epoch 2: the old owner's writes are refused, with who owns it now.
    store.claim("wf_abcdef", "me", 2);
    expect(store.ownership("wf_abcdef")).toEqual({ owner: "me", epoch: 2 });
    const fenced = { fenced: { workflow_id: "wf_abcdef", owner: "me", owner_name: "name-of-me", epoch: 2 } };
    expect(store.replicate({ op: "records", ...base, records: [record("b")] }, name)).toEqual(fenced);
    expect(store.replicate({ op: "started", ...base, spec, instances, started_at: 10, records: [] }, name)).toEqual(fenced);
    expect(store.replicate({ op: "ended", ...base }, name)).toEqual(fenced);
    expect(store.takenOverBy("me")).toEqual([{ id: "wf_abcdef", epoch: 2 }]);
    expect(store.unfinished("me").map((w) => [w.id, w.epoch])).toEqual([["wf_abcdef", 2]]);
  });

  it("an ended replica is let go; a restart drops other owners' replicas and keeps its own workflows", () => {
    const file = fileIn();
    const store = storeAt(file);
    const name = (id: string) => id;
    store.started({ id: "wf_mine01", owner: "me", epoch: 1, spec, instances, startedAt: 1 });
    store.replicate({ op: "started", workflow_id: "wf_theirs1", owner: "B", epoch: 1, spec, instances, started_at: 2, records: [] }, name);
    store.replicate({ op: "started", workflow_id: "wf_theirs2", owner: "C", epoch: 3, spec, instances, started_at: 3, records: [] }, name);
    expect(store.replicate({ op: "ended", workflow_id: "wf_theirs1", owner: "B", epoch: 1 }, name)).toEqual({ stored: true });
    expect(store.ownership("wf_theirs1")).toBeUndefined();
    store.close();
    const again = storeAt(file);
    expect(again.startedBy("me")).toBe(1);
    expect(again.ownership("wf_theirs2")).toBeUndefined();
    expect(again.unfinished("me").map((w) => w.id)).toEqual(["wf_mine01"]);
  });

  it("opens a version-1 store: its workflows become the node's own when it starts", () => {
    const file = fileIn();
    const v1 = new Database(file);
    v1.exec(`
      CREATE TABLE workflows (id TEXT PRIMARY KEY, spec TEXT NOT NULL, instances TEXT NOT NULL, started_at INTEGER NOT NULL, ended_at INTEGER, state TEXT, result TEXT);
      CREATE TABLE instances (workflow_id TEXT NOT NULL, id TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (workflow_id, id)) WITHOUT ROWID;
    `);
    v1.prepare("INSERT INTO workflows (id, spec, instances, started_at) VALUES (?, ?, ?, ?)").run("wf_old001", JSON.stringify(spec), JSON.stringify(instances), 5);
    v1.pragma("user_version = 1");
    v1.close();
    const store = storeAt(file);
    expect(store.startedBy("me")).toBe(0);
    expect(store.unfinished("me")).toEqual([{ id: "wf_old001", owner: "me", epoch: 1, spec, instances, startedAt: 5, records: {}, resumes: 0 }]);
  });

  it("opens a version-2 store: its workflows are not suspected of crashing the node", () => {
    const file = fileIn();
    const v2 = new Database(file);
    v2.exec(`
      CREATE TABLE workflows (id TEXT PRIMARY KEY, spec TEXT NOT NULL, instances TEXT NOT NULL, started_at INTEGER NOT NULL, ended_at INTEGER, state TEXT, result TEXT, owner TEXT NOT NULL DEFAULT '', epoch INTEGER NOT NULL DEFAULT 1);
      CREATE TABLE instances (workflow_id TEXT NOT NULL, id TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (workflow_id, id)) WITHOUT ROWID;
    `);
    v2.prepare("INSERT INTO workflows (id, spec, instances, started_at, owner, epoch) VALUES (?, ?, ?, ?, ?, ?)").run("wf_v2old01", JSON.stringify(spec), JSON.stringify(instances), 5, "me", 3);
    v2.pragma("user_version = 2");
    v2.close();
    const store = storeAt(file);
    expect(store.unfinished("me")).toEqual([{ id: "wf_v2old01", owner: "me", epoch: 3, spec, instances, startedAt: 5, records: {}, resumes: 0 }]);
    store.close();
    expect(new Database(file).pragma("user_version", { simple: true })).toBe(3);
  });

  it("counts resumes begun across reopens (committed before the call returns) and clears them once survived or ended", () => {
    const file = fileIn();
    const store = storeAt(file);
    store.started({ id: "wf_1", owner: "me", epoch: 1, spec, instances, startedAt: 1 });
    store.started({ id: "wf_2", owner: "me", epoch: 1, spec, instances, startedAt: 2 });
    store.resumesBegun(["wf_1", "wf_2"]);
    store.resumesBegun(["wf_1"]);
    store.close(); // as a crash would leave it: nothing else was written
    const again = storeAt(file);
    expect(again.unfinished("me").map((w) => [w.id, w.resumes])).toEqual([["wf_1", 2], ["wf_2", 1]]);
    again.resumeSurvived("wf_2");
    expect(again.unfinished("me").map((w) => [w.id, w.resumes])).toEqual([["wf_1", 2], ["wf_2", 0]]);
    again.ended({ id: "wf_1", endedAt: 5, state: {} as WorkflowState, result: {} as WorkflowResult });
    expect(again.unfinished("me").map((w) => w.id)).toEqual(["wf_2"]);
  });

  it("a replica carries its owner's resume count: with the whole copy, and with records when it is cleared", () => {
    const store = storeAt(fileIn());
    const base = { workflow_id: "wf_abcdef", owner: "A", epoch: 1 };
    store.replicate({ op: "started", ...base, spec, instances, started_at: 10, records: [], resumes: 1 }, (id) => id);
    expect(store.unfinished("A")[0]?.resumes).toBe(1);
    store.replicate({ op: "records", ...base, records: [record("a", { status: "complete" })] }, (id) => id);
    expect(store.unfinished("A")[0]?.resumes).toBe(1); // an older owner says nothing of it
    store.replicate({ op: "records", ...base, records: [], resumes: 0 }, (id) => id);
    expect(store.unfinished("A")[0]).toMatchObject({ resumes: 0, records: { a: { status: "complete" } } });
    store.replicate({ op: "started", ...base, spec, instances, started_at: 10, records: [] }, (id) => id);
    expect(store.unfinished("A")[0]?.resumes).toBe(0);
  });
});
