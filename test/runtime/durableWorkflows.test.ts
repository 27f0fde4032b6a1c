import { existsSync } from "node:fs";
import { join } from "node:path";
import { WorkflowStateSchema } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { type NodeProcess, stopAll, until } from "../support/shoalProcess.js";
import { resultOf, stepsLog, submit, workflowMesh } from "../support/workflowMesh.js";

const started: NodeProcess[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
});

const runsOf = (dir: string, step: string) => stepsLog(dir).filter((l) => l.step === step && !l.end);

describe("workflows survive their owner's restart (SQLite in --data-dir)", () => {
  it("an owner SIGKILLed mid-workflow takes it back on restart: ended steps keep their outcome, the running one runs again", async () => {
    // The owner runs no steps itself (0 slots): killing it kills only the orchestration.
    const { nodes, dir } = await workflowMesh([{ name: "d-a", slots: 0 }, { name: "d-b" }, { name: "d-c" }], started);
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    const id = await submit(a, {
      name: "durable",
      steps: [
        { id: "first", tool: "sleep_tool", input: { ms: 10 } },
        { id: "second", tool: "sleep_tool", needs: ["first"], input: { ms: 1_500, after: { $from: "first.step" } } },
        { id: "third", tool: "sleep_tool", needs: ["second"], input: { ms: 10 } },
      ],
    });
    await until(() => existsSync(join(dir, "steps.log")) && runsOf(dir, "second").length === 1, 10_000, () => "second never started");
    // Outcomes are stored in batches, up to 20 ms after they happen: wait until first's is.
    const stored = (l: Record<string, unknown>) => l.msg === "stored workflow progress" && (l.stored as string[]).includes(`${id}/first`);
    await until(() => a.logsMatching(stored).length > 0, 5_000, () => "first's outcome was never stored");
    await a.kill("SIGKILL");
    // Its steps' hosts see their supervisor gone and stop what it started.
    await until(() => stepsLog(dir).some((l) => l.step === "second" && l.end && l.aborted), 10_000, () => "the orphaned run of second was never stopped");

    a.restart();
    await a.ready();
    const result = await resultOf(a, id, 30_000);
    expect(result).toMatchObject({ workflow_id: id, status: "complete", steps_completed: 3, steps_failed: 0, result: { third: { step: "third" } } });
    expect(runsOf(dir, "first")).toHaveLength(1); // not run again: its outcome came from the store
    const second = runsOf(dir, "second");
    expect(second.map((r) => r.key)).toEqual([`${id}/second`, `${id}/second`]);
    expect(runsOf(dir, "third")).toHaveLength(1);
    const state = WorkflowStateSchema.parse((await b.get(`/v1/workflows/${id}`)).json);
    expect(state).toMatchObject({ status: "complete", owner: "d-a" });
    // Not a retry: the owner's restart is like a node going down under the step.
    expect(state.steps.second).toMatchObject({ status: "complete", attempts: 1 });
    expect(state.steps.first?.ended_at).toBeDefined();
    const resumed = a.logsMatching((l) => l.msg === "workflows taken back from the store");
    expect(resumed.at(-1)).toMatchObject({ resumed: 1 });

    // Ended, it stays readable across another restart.
    await a.kill("SIGKILL");
    a.restart();
    await a.ready();
    await until(async () => (await a.get(`/v1/workflows/${id}/result`)).status === 200, 10_000, () => "the ended workflow was not readable after a restart");
    expect((await a.get(`/v1/workflows/${id}/result`)).json).toEqual(result);
    expect(runsOf(dir, "third")).toHaveLength(1);
  });

  it("a SIGTERM'd owner keeps its unfinished workflows and runs them on when it starts again", async () => {
    const { nodes, dir } = await workflowMesh([{ name: "t-a", slots: 0 }, { name: "t-b" }], started);
    const [a] = nodes as [NodeProcess];
    const id = await submit(a, { name: "graceful", steps: [{ id: "long", tool: "sleep_tool", input: { ms: 1_000 } }] });
    await until(() => existsSync(join(dir, "steps.log")), 10_000);
    a.signal("SIGTERM");
    expect(await a.exit()).toBe(0);
    a.restart();
    await a.ready();
    const result = await resultOf(a, id, 30_000);
    expect(result).toMatchObject({ status: "complete", steps_completed: 1 });
    expect(runsOf(dir, "long").length).toBeGreaterThanOrEqual(1);
  });

  it("the whole mesh killed and started again: each owner finishes its own workflows", async () => {
    const { nodes, dir } = await workflowMesh([{ name: "m-a" }, { name: "m-b" }, { name: "m-c" }], started);
    const step = (ms: number) => ({ name: "everyone", steps: [{ id: "long", tool: "sleep_tool", input: { ms } }, { id: "after", tool: "sleep_tool", needs: ["long"], input: { ms: 10 } }] });
    const ids = await Promise.all(nodes.map((n) => submit(n, step(1_500))));
    await until(() => existsSync(join(dir, "steps.log")) && runsOf(dir, "long").length === 3, 10_000, () => "not every workflow started");
    await Promise.all(nodes.map((n) => n.kill("SIGKILL")));
    // In the opposite order, so the seed (m-a) comes back last: the others find each other through peers.json, not only --join.
    for (const n of [...nodes].reverse()) n.restart();
    await Promise.all(nodes.map((n) => n.ready()));
    for (const [i, n] of nodes.entries()) {
      const result = await resultOf(n, ids[i] as string, 30_000);
      expect(result).toMatchObject({ status: "complete", steps_completed: 2 });
      const state = WorkflowStateSchema.parse((await n.get(`/v1/workflows/${ids[i]}`)).json);
      expect(state.owner).toBe(n.name);
    }
    expect(runsOf(dir, "after")).toHaveLength(3);
  });

  it("a store file that cannot be opened stops the node at start with one clear line", async () => {
    const { nodes } = await workflowMesh([{ name: "s-a" }], started);
    const [a] = nodes as [NodeProcess];
    await a.kill("SIGKILL");
    const { writeFileSync, rmSync } = await import("node:fs");
    for (const f of ["workflows.db", "workflows.db-wal", "workflows.db-shm"]) rmSync(join(a.dataDir, f), { force: true });
    writeFileSync(join(a.dataDir, "workflows.db"), "not a database ".repeat(100));
    a.restart();
    expect(await a.exit()).toBe(1);
    const lines = a.stderr.trim().split("\n");
    expect(lines.at(-1)).toMatch(/SHOAL_ERR_STORE.*workflows\.db/);
  });
});
