import { existsSync } from "node:fs";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { WorkflowResultSchema, WorkflowStateSchema } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { type NodeProcess, stopAll, until } from "../support/shoalProcess.js";
import { type WorkflowNodeSpec, expectNeverAccepted, resultOf, stepsLog, submit, workflowMesh } from "../support/workflowMesh.js";

const started: NodeProcess[] = [];
const servers: Server[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});
const mesh = (specs: WorkflowNodeSpec[]) => workflowMesh(specs, started);

describe("workflows across real node processes", () => {
  it("runs independent steps in parallel and dependent ones after, in the seed's formats, from any node", async () => {
    const { nodes, dir } = await mesh([{ name: "w-a" }, { name: "w-b" }, { name: "w-c" }]);
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const id = await submit(a, {
      name: "shape",
      steps: [
        { id: "left", tool: "sleep_tool", input: { ms: 300 } },
        { id: "right", tool: "sleep_tool", input: { ms: 300 } },
        { id: "join", tool: "sleep_tool", needs: ["left", "right"], input: { ms: 10, seen: { $from: "left.node" } } },
      ],
    });
    // While it runs: the result is refused with 409, the state is readable from every node.
    const early = await b.get(`/v1/workflows/${id}/result`);
    expect(early.status).toBe(409);
    expect(early.json.error.code).toBe("SHOAL_ERR_WORKFLOW_RUNNING");
    const result = await resultOf(c, id);
    expect(result).toMatchObject({ workflow_id: id, status: "complete", steps_completed: 3, steps_failed: 0, failures: [], result: { join: { step: "join" } } });
    expect(Object.keys(result).sort()).toEqual(["failures", "nodes_used", "result", "status", "steps_completed", "steps_failed", "total_time_ms", "workflow_id"]);
    const state = WorkflowStateSchema.parse((await b.get(`/v1/workflows/${id}`)).json);
    expect(state).toMatchObject({ workflow_id: id, status: "complete", owner: "w-a" });
    for (const step of Object.values(state.steps)) {
      expect(Object.keys(step).sort()).toEqual(["actor", "attempts", "ended_at", "input", "needs", "node", "placement", "result", "started_at", "status", "tool"]);
      expect(step.actor).toMatch(/^w-a~/);
      expect(step).toMatchObject({ status: "complete", attempts: 1, tool: "sleep_tool" });
    }
    const ends = stepsLog(dir).filter((l) => l.end);
    const at = (s: string) => ends.find((l) => l.step === s);
    expect(at("left").start).toBeLessThan(at("right").end);
    expect(at("right").start).toBeLessThan(at("left").end);
    expect(at("join").start).toBeGreaterThanOrEqual(Math.max(at("left").end, at("right").end));
  });

  it("a step that times out is retried once, then failed; all retries failed gives partial with a failure report", async () => {
    const { nodes } = await mesh([{ name: "to-a" }, { name: "to-b" }]);
    const [a] = nodes as [NodeProcess];
    const id = await submit(a, {
      name: "timeouts",
      steps: [
        { id: "ok", tool: "sleep_tool", input: { ms: 10 } },
        { id: "slow", tool: "sleep_tool", input: { ms: 5_000 }, timeout_ms: 200, retries: 1 },
      ],
    });
    const result = await resultOf(a, id);
    expect(result.status).toBe("partial");
    expect(result.failures).toEqual([{ step: "slow", node: expect.stringMatching(/^to-/), error: { code: "SHOAL_ERR_STEP_TIMEOUT", message: expect.stringContaining("200 ms") }, attempts: 2 }]);
  });

  it("a tool that throws: recorded after its retries, and the step that needs it goes on with what exists", async () => {
    const { nodes } = await mesh([{ name: "te-a" }, { name: "te-b" }]);
    const [a] = nodes as [NodeProcess];
    const id = await submit(a, {
      name: "partial",
      steps: [
        { id: "fine", tool: "sleep_tool", input: { ms: 10 } },
        { id: "broken", tool: "boom_tool" },
        { id: "report", tool: "sleep_tool", input: { ms: 10, fine: { $from: "fine" }, broken: { $from: "broken" } } },
      ],
    });
    const result = await resultOf(a, id);
    expect(result).toMatchObject({ status: "partial", steps_completed: 2, steps_failed: 1, result: { report: { step: "report" } } });
    expect(result.failures).toEqual([{ step: "broken", node: expect.any(String), error: { code: "SHOAL_ERR_ACTOR_FAILED", message: "tool exploded on purpose" }, attempts: 2 }]);
  });

  it("a node SIGKILLed while running a step: the step is re-placed, completes, and it is not counted as a retry", async () => {
    const { nodes, dir } = await mesh([{ name: "k-a", slots: 0 }, { name: "k-b" }, { name: "k-c" }]);
    const [a] = nodes as [NodeProcess];
    const id = await submit(a, { name: "survive", steps: [{ id: "work", tool: "sleep_tool", input: { ms: 1_500 }, retries: 0 }] });
    await until(() => existsSync(join(dir, "steps.log")), 5_000);
    const first = stepsLog(dir)[0];
    await nodes.find((n) => n.name === first.node)!.kill("SIGKILL");
    const result = await resultOf(a, id);
    expect(result.status).toBe("complete");
    const state = (await a.get(`/v1/workflows/${id}`)).json;
    expect(state.steps.work).toMatchObject({ status: "complete", attempts: 1 });
    expect(state.steps.work.node).not.toBe(first.node);
    const runs = stepsLog(dir).filter((l) => l.start && !l.end);
    expect(runs.map((r) => [r.migration, r.key])).toEqual([
      [false, `${id}/work`],
      [true, `${id}/work`],
    ]);
  });

  it("the deadline stops running steps: the workflow ends partial or failed", async () => {
    const { nodes } = await mesh([{ name: "dl-a" }]);
    const [a] = nodes as [NodeProcess];
    const id = await submit(a, { name: "late", deadline_ms: 300, steps: [{ id: "long", tool: "sleep_tool", input: { ms: 10_000 } }, { id: "after", tool: "sleep_tool", needs: ["long"], input: { ms: 1 } }] });
    const result = await resultOf(a, id);
    expect(result.status).toBe("failed");
    expect(result.total_time_ms).toBeLessThan(3_000);
    expect(result.failures.map((f) => [f.step, f.error.code])).toEqual([
      ["long", "SHOAL_ERR_DEADLINE"],
      ["after", "SHOAL_ERR_DEADLINE"],
    ]);
  });

  it("respects max_parallel and slots: extra steps wait as pending", async () => {
    const { nodes, dir } = await mesh([{ name: "mp-a", slots: 1 }, { name: "mp-b", slots: 1 }]);
    const [a] = nodes as [NodeProcess];
    const id = await submit(a, {
      name: "wide",
      max_parallel: 3,
      steps: Array.from({ length: 6 }, (_, i) => ({ id: `s${i}`, tool: "sleep_tool", input: { ms: 150 } })),
    });
    let sawPending = false;
    await until(async () => {
      const s = (await a.get(`/v1/workflows/${id}`)).json;
      if (Object.values(s.steps).some((st: any) => st.status === "pending" && st.placement?.startsWith("waiting"))) sawPending = true;
      return s.status !== "running";
    }, 20_000);
    expect(sawPending).toBe(true);
    const ends = stepsLog(dir).filter((l) => l.end);
    const points = ends.flatMap((t) => [{ t: t.start, d: 1, node: t.node }, { t: t.end, d: -1, node: t.node }]).sort((x, y) => x.t - y.t || x.d - y.d);
    const per = new Map<string, number>();
    let peak = 0;
    for (const p of points) {
      per.set(p.node, (per.get(p.node) ?? 0) + p.d);
      peak = Math.max(peak, ...per.values());
    }
    expect(peak).toBe(1); // one slot per node
    expect((await resultOf(a, id)).steps_completed).toBe(6);
  });

  it("?wait=1 answers with the result; cancel through another node stops the steps", async () => {
    const { nodes } = await mesh([{ name: "c-a" }, { name: "c-b" }]);
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    const waited = await a.post("/v1/workflows?wait=1", { name: "quick", steps: [{ id: "q", tool: "sleep_tool", input: { ms: 5 } }] });
    expect(waited.status).toBe(200);
    expect(WorkflowResultSchema.parse(waited.json)).toMatchObject({ status: "complete", result: { q: { step: "q" } } });
    const id = await submit(a, { name: "long", steps: [{ id: "done", tool: "sleep_tool", input: { ms: 1 } }, { id: "long", tool: "sleep_tool", input: { ms: 20_000 } }] });
    await until(async () => (await b.get(`/v1/workflows/${id}`)).json.steps.long.status === "running", 5_000);
    const cancelled = await b.post(`/v1/workflows/${id}/cancel`);
    expect(cancelled.status).toBe(200);
    const result = await resultOf(a, id);
    expect(result.status).toBe("partial");
    expect(result.failures).toEqual([expect.objectContaining({ step: "long", error: expect.objectContaining({ code: "SHOAL_ERR_CANCELLED" }) })]);
    await expectNeverAccepted(b, "wf_unknown123");
  });

  it("posts workflow and step events to a webhook, and logs every event", async () => {
    const events: any[] = [];
    const hook = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        events.push(JSON.parse(body));
        res.end("ok");
      });
    });
    servers.push(hook);
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
    const { nodes } = await mesh([{ name: "n-a", extra: ["--egress-allow", "loopback"] }]);
    const [a] = nodes as [NodeProcess];
    const id = await submit(a, { name: "notified", notify: { url, on: ["workflow.started", "step.completed", "workflow.finished"] }, steps: [{ id: "one", tool: "sleep_tool", input: { ms: 5 } }] });
    await until(() => events.some((e) => e.event === "workflow.finished"), 10_000);
    expect(events.map((e) => e.event)).toEqual(["workflow.started", "step.completed", "workflow.finished"]);
    expect(events[2]).toMatchObject({ workflow_id: id, name: "notified", status: "complete" });
    expect(a.logsMatching((l) => typeof l.msg === "string" && l.msg.startsWith("workflow event")).map((l) => l.event)).toEqual(
      expect.arrayContaining(["workflow.started", "step.started", "step.completed", "workflow.finished"]),
    );
  });
});
