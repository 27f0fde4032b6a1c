import { existsSync } from "node:fs";
import { join } from "node:path";
import { WorkflowStateSchema } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { type NodeProcess, stopAll, until } from "../support/shoalProcess.js";
import { FAST, PLUGIN, resultOf, stepsLog, submit, workflowMesh } from "../support/workflowMesh.js";
import { ProxiedMesh } from "../chaos/ProxiedMesh.js";

const started: NodeProcess[] = [];
const proxied: ProxiedMesh[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
  for (const m of proxied.splice(0)) await m.close();
});

const runsOf = (dir: string, step: string) => stepsLog(dir).filter((l) => l.step === step && !l.end);
const metric = async (node: NodeProcess, name: string) => Number(new RegExp(`^${name} (\\d+)`, "m").exec((await node.get("/metrics")).text)?.[1] ?? Number.NaN);
/** first (quick), then second (1.5 s: the one running when things go wrong), then third. */
const chain = (name: string) => ({
  name,
  steps: [
    { id: "first", tool: "sleep_tool", input: { ms: 10 } },
    { id: "second", tool: "sleep_tool", needs: ["first"], input: { ms: 1_500 } },
    { id: "third", tool: "sleep_tool", needs: ["second"], input: { ms: 10 } },
  ],
});
/** What the node said of its store when it (re)started, after its first `skip` log lines. */
const takenBack = async (node: NodeProcess, skip: number) => {
  const said = () => node.logs.slice(skip).filter((l) => l.msg === "workflows taken back from the store");
  await until(() => said().length > 0, 10_000, () => `${node.name} never looked at its store`);
  return said()[0];
};

describe("workflows survive their owner's restart (SQLite in --data-dir)", () => {
  it("a lone node SIGKILLed mid-workflow takes it back on restart: ended steps keep their outcome, the running one runs again", async () => {
    // Alone, it has no backup to take the workflow over: its restart is what brings it back.
    const { nodes, dir } = await workflowMesh([{ name: "d-a" }], started);
    const [a] = nodes as [NodeProcess];
    const id = await submit(a, chain("durable"));
    await until(() => existsSync(join(dir, "steps.log")) && runsOf(dir, "second").length === 1, 10_000, () => "second never started");
    // Outcomes are stored in batches, up to 20 ms after they happen: wait until first's is.
    const stored = (l: Record<string, unknown>) => l.msg === "stored workflow progress" && (l.stored as string[]).includes(`${id}/first`);
    await until(() => a.logsMatching(stored).length > 0, 5_000, () => "first's outcome was never stored");
    await a.kill("SIGKILL");

    const logged = a.logs.length;
    a.restart();
    await a.ready();
    const result = await resultOf(a, id, 30_000);
    expect(result).toMatchObject({ workflow_id: id, status: "complete", steps_completed: 3, steps_failed: 0, result: { third: { step: "third" } } });
    expect(runsOf(dir, "first")).toHaveLength(1); // not run again: its outcome came from the store
    const second = runsOf(dir, "second");
    expect(second.map((r) => r.key)).toEqual([`${id}/second`, `${id}/second`]);
    expect(runsOf(dir, "third")).toHaveLength(1);
    const state = WorkflowStateSchema.parse((await a.get(`/v1/workflows/${id}`)).json);
    expect(state).toMatchObject({ status: "complete", owner: "d-a" });
    // Not a retry: the restart is like a node going down under the step.
    expect(state.steps.second).toMatchObject({ status: "complete", attempts: 1 });
    expect(state.steps.first?.ended_at).toBeDefined();
    expect(await takenBack(a, logged)).toMatchObject({ resumed: 1, handedOver: 0 });

    // Ended, it stays readable across another restart.
    await a.kill("SIGKILL");
    a.restart();
    await a.ready();
    await until(async () => (await a.get(`/v1/workflows/${id}/result`)).status === 200, 10_000, () => "the ended workflow was not readable after a restart");
    expect((await a.get(`/v1/workflows/${id}/result`)).json).toEqual(result);
    expect(runsOf(dir, "third")).toHaveLength(1);
  });

  it("a backup that goes down is replaced: the next one gets the whole workflow and takes it over when the owner dies", async () => {
    const { nodes, dir } = await workflowMesh([{ name: "r-a", slots: 0 }, { name: "r-b" }, { name: "r-c" }, { name: "r-d" }], started);
    const [a, ...peers] = nodes as [NodeProcess, ...NodeProcess[]];
    const id = await submit(a, chain("rebacked"));
    const copies = (n: NodeProcess, op: string) => n.logsMatching((l) => l.msg === "kept a copy of a workflow" && l.workflowId === id && l.op === op && l.answer === "stored");
    await until(() => peers.some((n) => copies(n, "records").length > 0), 10_000, () => "no backup got first's outcome");
    const firstBackup = peers.find((n) => copies(n, "records").length > 0) as NodeProcess;
    await firstBackup.kill("SIGKILL");
    const others = peers.filter((n) => n !== firstBackup);
    await until(() => others.some((n) => copies(n, "started").length > 0), 10_000, () => "no new backup got the whole workflow");
    const secondBackup = others.find((n) => copies(n, "started").length > 0) as NodeProcess;
    await a.kill("SIGKILL");
    const survivor = others.find((n) => n !== secondBackup) as NodeProcess;
    const result = await resultOf(survivor, id, 30_000);
    expect(result).toMatchObject({ status: "complete", steps_completed: 3 });
    expect(WorkflowStateSchema.parse((await survivor.get(`/v1/workflows/${id}`)).json).owner).toBe(secondBackup.name);
    expect(runsOf(dir, "first")).toHaveLength(1);
  });

  it("a SIGTERM'd owner hands its running workflows to its backup, and leaves them there when it starts again", async () => {
    const { nodes, dir } = await workflowMesh([{ name: "t-a", slots: 0 }, { name: "t-b" }], started);
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    const id = await submit(a, { name: "graceful", steps: [{ id: "long", tool: "sleep_tool", input: { ms: 1_000 } }, { id: "after", tool: "sleep_tool", needs: ["long"], input: { ms: 10 } }] });
    await until(() => existsSync(join(dir, "steps.log")), 10_000);
    a.signal("SIGTERM");
    expect(await a.exit()).toBe(0);
    // Stopped there without ending: its backup (the only peer) takes it over and finishes it.
    const result = await resultOf(b, id, 30_000);
    expect(result).toMatchObject({ status: "complete", steps_completed: 2 });
    expect(WorkflowStateSchema.parse((await b.get(`/v1/workflows/${id}`)).json).owner).toBe("t-b");
    const logged = a.logs.length;
    a.restart();
    await a.ready();
    expect(await takenBack(a, logged)).toMatchObject({ resumed: 0 });
    expect(a.logsMatching((l) => l.msg === "another node owns this workflow now; dropped it here" && l.workflowId === id)).toMatchObject([{ owner: "t-b", epoch: 2 }]);
    expect(runsOf(dir, "after")).toHaveLength(1);
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

  it("an owner that stays down: its backup peer takes the workflow over; back again, the old owner leaves it there", async () => {
    const { nodes, dir } = await workflowMesh([{ name: "p-a", slots: 0 }, { name: "p-b" }, { name: "p-c" }], started);
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const id = await submit(a, chain("taken-over"));
    await until(() => existsSync(join(dir, "steps.log")) && runsOf(dir, "second").length === 1, 10_000, () => "second never started");
    // first's outcome has reached the backup's copy.
    const copied = (l: Record<string, unknown>) => l.msg === "kept a copy of a workflow" && l.workflowId === id && l.op === "records" && l.answer === "stored";
    await until(() => b.logsMatching(copied).length + c.logsMatching(copied).length > 0, 5_000, () => "no backup got first's outcome");
    const backup = b.logsMatching(copied).length > 0 ? b : c;
    const other = backup === b ? c : b;
    await a.kill("SIGKILL");

    const result = await resultOf(other, id, 30_000);
    expect(result).toMatchObject({ workflow_id: id, status: "complete", steps_completed: 3, result: { third: { step: "third" } } });
    const state = WorkflowStateSchema.parse((await other.get(`/v1/workflows/${id}`)).json);
    expect(state.owner).toBe(backup.name);
    expect(state.steps.second).toMatchObject({ status: "complete", attempts: 1 });
    expect(backup.logsMatching((l) => l.msg === "took over a workflow whose owner is down" && l.workflowId === id)).toMatchObject([{ from: "p-a", epoch: 2 }]);
    expect(await metric(backup, "shoal_workflows_taken_over_total")).toBe(1);
    expect(await metric(other, "shoal_workflows_taken_over_total")).toBe(0);
    expect(runsOf(dir, "first")).toHaveLength(1);
    expect(runsOf(dir, "second").map((r) => r.key)).toEqual([`${id}/second`, `${id}/second`]);
    expect(runsOf(dir, "third")).toHaveLength(1);

    // The old owner comes back: it finds the workflow taken over and does not run it again.
    const logged = a.logs.length;
    a.restart();
    await a.ready();
    // Told by the new owner as soon as they are linked, or finding out when it asks: either way it drops its copy.
    expect(await takenBack(a, logged)).toMatchObject({ resumed: 0 });
    expect(a.logsMatching((l) => l.msg === "another node owns this workflow now; dropped it here" && l.workflowId === id)).toMatchObject([{ owner: backup.name, epoch: 2 }]);
    expect(await metric(a, "shoal_workflows_gave_way_total")).toBe(1);
    expect(await metric(a, "shoal_workflows_running")).toBe(0);
    expect(WorkflowStateSchema.parse((await a.get(`/v1/workflows/${id}`)).json)).toMatchObject({ status: "complete", owner: backup.name });
    expect(runsOf(dir, "third")).toHaveLength(1);
  });

  it("an owner cut off from the mesh is replaced; when the link heals, its own copy gives way to the new owner's", async () => {
    // Links between the nodes pass through a fault proxy: the partition is a real network's.
    const mesh = await ProxiedMesh.start([{ name: "q-a", extra: ["--slots", "0"] }, { name: "q-b" }, { name: "q-c" }], { extra: ["--plugin", PLUGIN, "--slots", "4", ...FAST], started });
    proxied.push(mesh);
    const { nodes } = mesh;
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const id = await submit(a, chain("split"));
    const copied = (l: Record<string, unknown>) => l.msg === "kept a copy of a workflow" && l.workflowId === id && l.op === "records" && l.answer === "stored";
    await until(() => b.logsMatching(copied).length + c.logsMatching(copied).length > 0, 10_000, () => "no backup got first's outcome");
    const backup = b.logsMatching(copied).length > 0 ? b : c;
    // Cut q-a off: nothing it sends its peers or they send it gets through. Both sides see the other go down.
    mesh.proxy.partition([["q-a"], ["q-b", "q-c"]]);
    const result = await resultOf(backup, id, 30_000);
    expect(result).toMatchObject({ status: "complete", steps_completed: 3 });
    // Meanwhile q-a, cut off, still has its own copy (running, or ended without the steps it could not place).
    expect((await a.get(`/v1/workflows/${id}`)).json.owner).toBe("q-a");

    // Healed: the new owner tells q-a, which stops its copy or drops its outcome; every node then
    // answers with the new owner's.
    mesh.proxy.heal();
    const gaveWay = (l: Record<string, unknown>) =>
      l.workflowId === id && (l.msg === "another node took this workflow over; stopping it here" || l.msg === "another node owns this workflow now; dropped it here");
    await until(() => a.logsMatching(gaveWay).length > 0, 15_000, () => "q-a kept its own copy");
    for (const n of nodes) {
      // q-a answers through its peers once it sees them up again.
      await until(async () => (await n.get(`/v1/workflows/${id}`)).status === 200, 10_000, () => `${n.name} does not answer for ${id}`);
      const state = WorkflowStateSchema.parse((await n.get(`/v1/workflows/${id}`)).json);
      expect(state).toMatchObject({ status: "complete", owner: backup.name });
    }
  }, 60_000);

  it("a store file that cannot be opened at all stops the node at start with one clear line", async () => {
    const { nodes } = await workflowMesh([{ name: "s-a" }], started);
    const [a] = nodes as [NodeProcess];
    await a.kill("SIGKILL");
    const { mkdirSync, rmSync } = await import("node:fs");
    for (const f of ["workflows.db", "workflows.db-wal", "workflows.db-shm"]) rmSync(join(a.dataDir, f), { force: true });
    // A directory in its place: not a file to move aside (an unreadable file is: test/durability).
    mkdirSync(join(a.dataDir, "workflows.db"));
    a.restart();
    expect(await a.exit()).toBe(1);
    const lines = a.stderr.trim().split("\n");
    expect(lines.at(-1)).toMatch(/SHOAL_ERR_STORE.*workflows\.db/);
  });
});
