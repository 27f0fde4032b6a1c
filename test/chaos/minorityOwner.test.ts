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

describe("one dispatcher per workflow under a partition (issue 12 point 4)", () => {
  it("an owner cut off from 2 of 3 pauses its workflow; the majority takes it over and ends it; after the heal there is one outcome", async () => {
    const dir = tempDir("minority-");
    // Every node has slots: the cut-off owner could run the rest of the workflow alone, and must not.
    const mesh = await ProxiedMesh.start([{ name: "m-a" }, { name: "m-b" }, { name: "m-c" }], { extra: ["--plugin", PLUGIN, "--slots", "4", ...FAST], env: { SHOAL_TEST_DIR: dir }, started });
    proxied.push(mesh);
    const [a, b, c] = mesh.nodes as [NodeProcess, NodeProcess, NodeProcess];
    // Members count towards a majority once they have been up a while (not a peer that flashes by).
    const counted = (l: Record<string, unknown>) => l.msg === "a majority is counted among these members now" && l.members === 3;
    await until(() => [a, b, c].every((n) => n.logsMatching(counted).length > 0), 15_000, () => "the nodes never counted each other");
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

    mesh.proxy.heal();
    const gaveWay = (l: Record<string, unknown>) => l.workflowId === id && l.msg === "another node took this workflow over; stopping it here";
    await until(() => a.logsMatching(gaveWay).length > 0, 15_000, () => "m-a kept its own copy");
    for (const n of mesh.nodes) {
      await until(async () => (await n.get(`/v1/workflows/${id}/result`)).status === 200, 10_000, () => `${n.name} does not answer for ${id}`);
      expect(WorkflowResultSchema.parse((await n.get(`/v1/workflows/${id}/result`)).json)).toEqual(result);
      expect(await stateAt(n)).toMatchObject({ status: "complete", owner: backup.name });
    }
    // One outcome: the step after the cut ran once, on the majority's side.
    expect(stepsLog(dir).filter((l) => l.step === "third" && !l.end)).toHaveLength(1);
  }, 60_000);
});
