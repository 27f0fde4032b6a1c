import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type NodeProcess, stopAll, until } from "../support/shoalProcess.js";
import { chainSpec, expectNeverAccepted, quickSpec, resultOf, stepsLog, submit, workflowMesh } from "../support/workflowMesh.js";

const started: NodeProcess[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
});

const kept = (id: string) => (l: Record<string, unknown>) => l.msg === "kept a copy of a workflow" && l.workflowId === id && l.answer === "stored";

describe("what a 202 means across nodes, and results that outlive their owner (real nodes)", () => {
  it("the 202 is on the backup: the owner SIGKILLed right after it, the backup has the workflow and finishes it", async () => {
    // r-a runs no steps: nothing of the workflow is anywhere but in its store and its backup's.
    const { nodes, dir } = await workflowMesh([{ name: "r-a", slots: 0 }, { name: "r-b" }], started);
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    const id = await submit(a, chainSpec("acked", 300));
    await a.kill("SIGKILL");
    // Its copy was stored (and synced) on r-b before the 202 went out.
    expect(b.logsMatching((l) => kept(id)(l) && l.op === "started")).toHaveLength(1);
    const result = await resultOf(b, id, 15_000);
    expect(result).toMatchObject({ status: "complete", steps_completed: 2, result: { second: { step: "second" } } });
    expect((await b.get(`/v1/workflows/${id}`)).json.owner).toBe("r-b");
    expect(stepsLog(dir).filter((l) => l.step === "second" && !l.end)).toHaveLength(1);
  });

  it("with no peer up the 202 is the owner's alone, and the state says there is no copy yet; a backup that comes up gets one", async () => {
    const { nodes } = await workflowMesh([{ name: "solo-a" }], started);
    const [a] = nodes as [NodeProcess];
    const id = await submit(a, chainSpec("alone", 8_000));
    expect((await a.get(`/v1/workflows/${id}`)).json).toMatchObject({ status: "running", copies: 0 });
    const { nodes: later } = await workflowMesh([{ name: "solo-b", extra: ["--join", a.address] }], started);
    const [b] = later as [NodeProcess];
    await until(async () => (await a.get(`/v1/workflows/${id}`)).json.copies === 1, 10_000, () => "no backup got a copy");
    expect(b.logsMatching(kept(id)).length).toBeGreaterThan(0);
  });

  it("results outlive their owner: with it SIGKILLed for good, any live node answers from a copy; owner and backup down: 503 naming the owner; never accepted: 404", async () => {
    const { nodes } = await workflowMesh([{ name: "o-a" }, { name: "o-b" }, { name: "o-c" }], started);
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const id = await submit(a, quickSpec("outlives"));
    expect((await resultOf(a, id)).status).toBe("complete");
    const backup = await until(() => b.logsMatching((l) => kept(id)(l) && l.op === "ended").length + c.logsMatching((l) => kept(id)(l) && l.op === "ended").length > 0, 10_000, () => "no backup kept the end").then(() =>
      b.logsMatching((l) => kept(id)(l) && l.op === "ended").length > 0 ? b : c,
    );
    const other = backup === b ? c : b;
    await a.kill("SIGKILL");
    await until(async () => (await other.statusOf("o-a")) === "down", 10_000);
    for (const n of [backup, other]) {
      const state = await n.get(`/v1/workflows/${id}`);
      expect(state.status).toBe(200);
      expect(state.json).toMatchObject({ workflow_id: id, status: "complete", owner: "o-a" });
      const result = await n.get(`/v1/workflows/${id}/result`);
      expect(result.json).toMatchObject({ workflow_id: id, status: "complete", result: { only: { step: "only" } } });
    }
    await backup.kill("SIGKILL");
    await until(async () => (await other.statusOf(backup.name)) === "down", 10_000);
    const gone = await other.get(`/v1/workflows/${id}`);
    expect(gone.status).toBe(503);
    expect(gone.json.error).toMatchObject({ code: "SHOAL_ERR_OWNER_UNAVAILABLE", message: expect.stringContaining("o-a") });
    expect((await other.get(`/v1/workflows/${id}/result`)).status).toBe(503);
    // An id no node ever accepted, with or without an owner tag: 404 once the node asked has
    // joined (it may be only a moment old here: until then 503 SHOAL_ERR_RESUMING, never 404).
    for (const never of ["wf_nothinghere0", "wf_0123abcdnothinghere"]) await expectNeverAccepted(other, never);
    // The backup back (same data dir): the copy was on its disk, and answers again.
    await backup.restart().ready();
    await until(async () => (await other.get(`/v1/workflows/${id}`)).status === 200, 15_000, () => "the restarted backup did not answer from its copy");
  });

  it("a corrupt workflows.db is moved aside and the copies the peers hold come back to it", async () => {
    const { nodes } = await workflowMesh([{ name: "c-a" }, { name: "c-b" }], started);
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    const ids = [await submit(a, quickSpec("one")), await submit(a, quickSpec("two"))];
    for (const id of ids) await resultOf(a, id);
    await until(() => ids.every((id) => b.logsMatching((l) => kept(id)(l) && l.op === "ended").length > 0), 10_000, () => "c-b did not keep both ends");
    await a.kill("SIGKILL");
    const db = join(a.dataDir, "workflows.db");
    rmSync(`${db}-wal`, { force: true });
    rmSync(`${db}-shm`, { force: true });
    writeFileSync(db, Buffer.alloc(64 * 1024, "not a database. "));
    await a.restart().ready();
    const restored = (l: Record<string, unknown>) => String(l.msg).startsWith("the workflow store was moved aside: restored");
    await until(() => a.logsMatching(restored).length > 0, 15_000, () => "c-a did not restore from its peers");
    expect(a.logsMatching(restored)[0]).toMatchObject({ ended: 2 });
    // c-b gone: c-a answers from its own store again.
    await b.kill("SIGKILL");
    for (const id of ids) {
      const result = await a.get(`/v1/workflows/${id}/result`);
      expect(result.status).toBe(200);
      expect(result.json).toMatchObject({ workflow_id: id, status: "complete", result: { only: { step: "only" } } });
    }
    expect((await a.get("/v1/workflows")).json.workflows.map((w: { workflow_id: string }) => w.workflow_id).sort()).toEqual([...ids].sort());
  });
});
