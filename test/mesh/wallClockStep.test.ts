import { resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type NodeProcess, startMesh, stopAll, until } from "../support/shoalProcess.js";

const PRELOAD = resolve(import.meta.dirname, "../fixtures/wallClockStep.mjs");
const PLUGIN = resolve(import.meta.dirname, "../fixtures/plugins/chaosSteps.mjs");
// Fast detector settings: with the wall clock, a step of an hour is silence of an hour at once.
const FAST = ["--heartbeat-ms", "100", "--suspect-after-ms", "300", "--down-after-ms", "600"];
const HOUR = 3_600_000;

const started: NodeProcess[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
});

const statuses = async (node: NodeProcess) => Object.fromEntries((await node.nodes()).map((r) => [r.name, r.status]).sort());
/** What a node logs when it gives up on a link or a peer. */
const GAVE_UP = new Set(["peer stopped answering; closing the connection", "peer disconnected", "member suspect", "member down"]);

describe("a wall-clock step on real node processes", () => {
  it("an hour ahead on one node and an hour back on another: links stay up, /v1/nodes stays all up, no step times out early", async () => {
    // Each node can step its own Date.now() on SIGUSR2; wc-b jumps ahead, wc-c back.
    const env = (stepMs: number) => ({ NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${PRELOAD}`.trim(), SHOAL_TEST_CLOCK_STEP_MS: String(stepMs) });
    const mesh = await startMesh(["wc-a"], { extra: [...FAST, "--plugin", PLUGIN] });
    started.push(...mesh.nodes);
    const [a] = mesh.nodes as [NodeProcess];
    const more = await Promise.all(
      [
        ["wc-b", HOUR],
        ["wc-c", -HOUR],
      ].map(async ([name, stepMs]) => {
        const m = await startMesh([name as string], { extra: [...FAST, "--plugin", PLUGIN, "--join", a.address], env: env(stepMs as number) });
        started.push(...m.nodes);
        return m.nodes[0] as NodeProcess;
      }),
    );
    const [b, c] = more as [NodeProcess, NodeProcess];
    const all = { "wc-a": "up", "wc-b": "up", "wc-c": "up" };
    for (const n of [a, b, c]) await until(async () => JSON.stringify(await statuses(n)) === JSON.stringify(all), 10_000, () => `${n.name} never saw all 3 up`);

    // Owned by the node whose clock jumps ahead; its steps on each node, each well inside its timeout.
    const step = (id: string, node: string, needs?: string) => ({
      id,
      tool: "chaos_step",
      input: { ms: 1_200 },
      timeout_ms: 3_000,
      retries: 1,
      placement: { node },
      ...(needs && { needs: [needs] }),
    });
    const submitted = await b.post("/v1/workflows", { name: "clock-step", deadline_ms: 20_000, steps: [step("one", "wc-c"), step("two", "wc-a", "one"), step("three", "wc-b", "two")] });
    expect(submitted.status).toBe(202);
    const id = submitted.json.workflow_id as string;
    await until(async () => (await b.get(`/v1/workflows/${id}`)).json?.steps?.one?.status === "running", 5_000, () => "step one never ran");

    const stepped = (n: NodeProcess) => n.stderr.includes("wall clock stepped");
    const logsBefore = new Map([a, b, c].map((n) => [n, n.logs.length]));
    b.signal("SIGUSR2");
    c.signal("SIGUSR2");
    await until(() => stepped(b) && stepped(c), 5_000, () => "the preload never stepped the clocks");
    const steppedAt = Date.now();

    // Many detection periods after the step, every node sees every node up, every time it is asked.
    const seen: Record<string, string>[] = [];
    while (Date.now() - steppedAt < 3_000) {
      for (const n of [a, b, c]) seen.push(await statuses(n));
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen.filter((s) => JSON.stringify(s) !== JSON.stringify(all))).toEqual([]);

    let state: any;
    await until(
      async () => {
        state = (await b.get(`/v1/workflows/${id}`)).json;
        return state?.status === "complete";
      },
      15_000,
      () => `workflow did not complete: ${JSON.stringify(state)}`,
    );
    for (const s of ["one", "two", "three"]) expect(state.steps[s]).toMatchObject({ status: "complete", attempts: 1 });
    expect(state.steps.one.node).toBe("wc-c");
    // The step really moved the nodes' wall clocks: their log times jumped by the hour.
    const lastTime = (n: NodeProcess) => Number(n.logs.at(-1)?.time);
    expect(lastTime(b)).toBeGreaterThan(Date.now() + HOUR / 2);
    expect(lastTime(c)).toBeLessThan(Date.now() - HOUR / 2);
    // And no node gave up on a link or a peer after it.
    for (const n of [a, b, c]) expect(n.logs.slice(logsBefore.get(n)).filter((l) => GAVE_UP.has(String(l.msg)))).toEqual([]);
  });
});
