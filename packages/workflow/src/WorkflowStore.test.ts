import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WorkflowResult, WorkflowState } from "@shoal/protocol";
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

  it("an ended workflow keeps its final state and result instead of its records, until forgotten", () => {
    const store = storeAt(fileIn());
    store.started({ id: "wf_1", owner: "me", epoch: 1, spec, instances, startedAt: 1 });
    store.started({ id: "wf_2", owner: "me", epoch: 1, spec, instances, startedAt: 2 });
    store.saveRecords([{ workflowId: "wf_1", record: record("a", { status: "complete" }) }]);
    const state = { workflow_id: "wf_1", status: "complete" } as unknown as WorkflowState;
    const result = { workflow_id: "wf_1", status: "complete" } as unknown as WorkflowResult;
    store.ended({ id: "wf_1", endedAt: 5, state, result });
    expect(store.endedWorkflows()).toEqual([{ id: "wf_1", endedAt: 5, state, result }]);
    expect(store.unfinished("me").map((w) => w.id)).toEqual(["wf_2"]);
    store.forget("wf_1");
    expect(store.endedWorkflows()).toEqual([]);
    expect(store.unfinished("me").map((w) => w.id)).toEqual(["wf_2"]);
  });

  it("refuses a file it cannot use with SHOAL_ERR_STORE and a clear reason", () => {
    const dir = mkdtempSync(join(tmpdir(), "shoal-store-"));
    const junk = join(dir, "junk.db");
    writeFileSync(junk, "this is not a database, just some text that is long enough to look like a header...".repeat(20));
    expect(() => WorkflowStore.open(junk)).toThrow(expect.objectContaining({ code: "SHOAL_ERR_STORE", message: expect.stringContaining("junk.db") }));
    const newer = join(dir, "newer.db");
    const db = new Database(newer);
    db.pragma("user_version = 99");
    db.close();
    expect(() => WorkflowStore.open(newer)).toThrow(expect.objectContaining({ code: "SHOAL_ERR_STORE", message: expect.stringMatching(/version 99.*reads version 3/) }));
  });

  it("a write that fails is a SHOAL_ERR_STORE saying what could not be stored", () => {
    const store = storeAt(fileIn());
    store.started({ id: "wf_1", owner: "me", epoch: 1, spec, instances, startedAt: 1 });
    // The same id twice: SQLite's constraint error, as the caller sees it.
    expect(() => store.started({ id: "wf_1", owner: "me", epoch: 1, spec, instances, startedAt: 1 })).toThrow(
      expect.objectContaining({ code: "SHOAL_ERR_STORE", message: expect.stringContaining("could not store a new workflow") }),
    );
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
