import { WorkflowResultSchema, WorkflowStateSchema } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { type NodeProcess, stopAll, tempDir, until } from "../support/shoalProcess.js";
import { FAST, PLUGIN, resultOf, stepsLog, submit } from "../support/workflowMesh.js";
import { ProxiedMesh } from "./ProxiedMesh.js";

const started: NodeProcess[] = [];
const proxied: ProxiedMesh[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
  for (const m of proxied.splice(0)) await m.close();
});

/** first (quick), then second (1.5 s: the one running at the cut), then third. */
const chain = {
  name: "minority",
  steps: [
    { id: "first", tool: "sleep_tool", input: { ms: 10 } },
    { id: "second", tool: "sleep_tool", needs: ["first"], input: { ms: 1_500 } },
    { id: "third", tool: "sleep_tool", needs: ["second"], input: { ms: 10 } },
  ],
};

/**
 * 3 nodes `<p>-a`, `<p>-b`, `<p>-c`; a one-step workflow on `<p>-a` cut off from the other two
 * half way through its step. Slow suspicion (1 s) next to the step's 400 ms: the owner ends the
 * workflow well before it knows it is cut off, so only the rule that an end is shown once the
 * copies have it holds it back.
 */
async function cutWhileEnding(prefix: string) {
  const dir = tempDir(`${prefix}-ending-`);
  const detector = ["--heartbeat-ms", "100", "--suspect-after-ms", "1000", "--down-after-ms", "2000"];
  const names = ["a", "b", "c"].map((x) => `${prefix}-${x}`);
  const mesh = await ProxiedMesh.start(names.map((name) => ({ name })), { extra: ["--plugin", PLUGIN, "--slots", "4", ...detector], env: { SHOAL_TEST_DIR: dir }, started });
  proxied.push(mesh);
  const [a, b, c] = mesh.nodes as [NodeProcess, NodeProcess, NodeProcess];
  await mesh.counted();
  const id = await submit(a, { name: "ends-at-the-cut", steps: [{ id: "only", tool: "sleep_tool", input: { ms: 400 }, placement: { prefer: "local" } }] });
  const stateAt = async (n: NodeProcess) => WorkflowStateSchema.parse((await n.get(`/v1/workflows/${id}`)).json);
  await until(async () => (await stateAt(a)).steps.only?.status === "running", 5_000, () => "the step never ran");
  await new Promise((r) => setTimeout(r, 200)); // half way through the step
  mesh.proxy.partition([[a.name], [b.name, c.name]]);
  return { mesh, a, b, c, id, dir, stateAt };
}

describe("one dispatcher per workflow under a partition (issue 12 point 4)", () => {
  it("an owner cut off from 2 of 3 pauses its workflow; the majority takes it over and ends it; after the heal there is one outcome", async () => {
    const dir = tempDir("minority-");
    // Every node has slots: the cut-off owner could run the rest of the workflow alone, and must not.
    const mesh = await ProxiedMesh.start([{ name: "m-a" }, { name: "m-b" }, { name: "m-c" }], { extra: ["--plugin", PLUGIN, "--slots", "4", ...FAST], env: { SHOAL_TEST_DIR: dir }, started });
    proxied.push(mesh);
    const [a, b, c] = mesh.nodes as [NodeProcess, NodeProcess, NodeProcess];
    // Members count towards a majority once they have been up a while (not a peer that flashes by).
    await mesh.counted();
    const id = await submit(a, chain);
    const copied = (l: Record<string, unknown>) => l.msg === "kept a copy of a workflow" && l.workflowId === id && l.op === "records" && l.answer === "stored";
    await until(() => b.logsMatching(copied).length + c.logsMatching(copied).length > 0, 10_000, () => "no backup got first's outcome");
    const backup = b.logsMatching(copied).length > 0 ? b : c;

    mesh.proxy.partition([["m-a"], ["m-b", "m-c"]]);
    const stateAt = async (n: NodeProcess) => WorkflowStateSchema.parse((await n.get(`/v1/workflows/${id}`)).json);
    await until(async () => (await stateAt(a)).paused === "minority", 10_000, () => "m-a, cut off, did not pause its workflow");
    const result = await resultOf(backup, id, 30_000);
    expect(result).toMatchObject({ status: "complete", steps_completed: 3 });
    expect((await stateAt(backup)).owner).toBe(backup.name);

    // m-a, alone, let the running step end (it re-placed it on itself if it was elsewhere) but started nothing after it, nor ended.
    const ranOnA = (step: string) => stepsLog(dir).filter((l) => l.step === step && l.node === a.name && !l.end);
    await until(async () => (await stateAt(a)).steps.second?.status !== "running", 10_000, () => "m-a's second step never ended");
    expect(await stateAt(a)).toMatchObject({ status: "running", owner: "m-a", paused: "minority" });
    expect(ranOnA("third")).toHaveLength(0);
    // Its result it does not claim to know: not "still running" (409) while the majority has ended it.
    expect(await a.get(`/v1/workflows/${id}/result`)).toMatchObject({ status: 503, json: { error: { code: "SHOAL_ERR_MINORITY" } } });

    mesh.proxy.heal();
    const gaveWay = (l: Record<string, unknown>) => l.workflowId === id && l.msg === "another node took this workflow over; stopping it here";
    // Read from the old owner all through the heal: never "running" once the majority said complete.
    const seenOnA = new Set<number>();
    await until(
      async () => {
        seenOnA.add((await a.get(`/v1/workflows/${id}/result`)).status);
        return a.logsMatching(gaveWay).length > 0 && seenOnA.has(200);
      },
      15_000,
      () => `m-a kept its own copy, or never answered the result (seen: ${[...seenOnA].join(", ")})`,
    );
    expect([...seenOnA].filter((s) => s !== 200 && s !== 503)).toEqual([]);
    for (const n of mesh.nodes) {
      await until(async () => (await n.get(`/v1/workflows/${id}/result`)).status === 200, 10_000, () => `${n.name} does not answer for ${id}`);
      expect(WorkflowResultSchema.parse((await n.get(`/v1/workflows/${id}/result`)).json)).toEqual(result);
      expect(await stateAt(n)).toMatchObject({ status: "complete", owner: backup.name });
    }
    // One outcome: the step after the cut ran once, on the majority's side.
    expect(stepsLog(dir).filter((l) => l.step === "third" && !l.end)).toHaveLength(1);
  }, 60_000);

  it("a workflow that ends on an owner just cut off, before it suspects it is alone, is not shown there: the majority's outcome is the only one given out", async () => {
    const { mesh, a, b, c, id, dir, stateAt } = await cutWhileEnding("e");

    // Until the majority has its own outcome, read the cut-off owner over and over.
    const seenOnA = new Set<string>();
    let result: ReturnType<typeof WorkflowResultSchema.parse> | undefined;
    await until(
      async () => {
        const s = await stateAt(a);
        seenOnA.add(`${s.status}${s.ending ? ` ${s.ending}` : ""}`);
        for (const n of [b, c]) {
          const r = await n.get(`/v1/workflows/${id}/result`);
          if (r.status === 200) result = WorkflowResultSchema.parse(r.json);
        }
        return result !== undefined;
      },
      30_000,
      () => `the majority never ended it; e-a showed ${[...seenOnA].join(", ")}`,
    );
    // e-a ended it (its step ran to its end there) but never showed that outcome.
    expect([...seenOnA]).toContain("running replicating");
    expect([...seenOnA].filter((x) => !x.startsWith("running"))).toEqual([]);
    expect(stepsLog(dir).filter((l) => l.step === "only" && l.node === a.name && l.end)).toHaveLength(1);

    mesh.proxy.heal();
    for (const n of mesh.nodes) {
      await until(async () => (await n.get(`/v1/workflows/${id}/result`)).status === 200, 15_000, () => `${n.name} does not answer for ${id}`);
      expect(WorkflowResultSchema.parse((await n.get(`/v1/workflows/${id}/result`)).json), n.name).toEqual(result);
    }
  }, 60_000);

  it("at a heal, the cut-off owner regains a majority before it hears from the node that took its workflow over: it still shows none of its own outcome", async () => {
    const { mesh, a, b, c, id, stateAt } = await cutWhileEnding("h");
    const majorityResult = async () => {
      for (const n of [b, c]) {
        const r = await n.get(`/v1/workflows/${id}/result`);
        if (r.status === 200) return { node: n, result: WorkflowResultSchema.parse(r.json) };
      }
      return undefined;
    };
    let theirs: Awaited<ReturnType<typeof majorityResult>>;
    await until(
      async () => {
        theirs = await majorityResult();
        return theirs !== undefined;
      },
      30_000,
      () => "the majority never ended it",
    );
    const newOwner = (await stateAt(theirs!.node)).owner;
    const other = [b, c].find((n) => n.name !== newOwner) as NodeProcess;
    // Half a heal: h-a meets the node that did not take the workflow over, and sees a majority
    // again, while the one that took it over is still cut off and marked down there.
    mesh.proxy.heal();
    mesh.proxy.partition([["h-a", other.name], [newOwner]]);
    const regained = (l: Record<string, unknown>) => l.msg === "a majority of the mesh is up here again: resuming the paused workflows";
    await until(() => a.logsMatching(regained).length > 0, 15_000, () => "h-a never saw a majority again");
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const s = await stateAt(a);
      seen.add(s.status);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect([...seen]).toEqual(["running"]);

    mesh.proxy.heal();
    for (const n of mesh.nodes) {
      await until(async () => (await n.get(`/v1/workflows/${id}/result`)).status === 200, 15_000, () => `${n.name} does not answer for ${id}`);
      expect(WorkflowResultSchema.parse((await n.get(`/v1/workflows/${id}/result`)).json), n.name).toEqual(theirs!.result);
    }
  }, 60_000);
});
