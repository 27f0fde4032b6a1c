import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WorkflowResultSchema, WorkflowStateSchema, silentLogger } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { type WorkflowNode, attemptLog, resetRecords, startWorkflowCluster, timeline } from "./testing/workflowCluster.js";
import { WorkflowService } from "./WorkflowService.js";
import { WorkflowStore } from "./WorkflowStore.js";

const nodes: WorkflowNode[] = [];
async function cluster(specs: Parameters<typeof startWorkflowCluster>[0]) {
  const started = await startWorkflowCluster(specs);
  nodes.push(...started);
  return started;
}
const stores: WorkflowStore[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
  for (const s of stores.splice(0)) s.close();
  resetRecords();
});
const cameras = () => cluster([{ name: "edge-01", capabilities: ["camera"] }, { name: "edge-02", capabilities: ["camera"] }, { name: "gpu-01", capabilities: ["gpu"] }]);

describe("workflows end to end (in process)", () => {
  it("runs the seed's example: one step per camera in parallel, then a summary that waits for them", async () => {
    const [a, , gpu] = await cameras();
    const { workflow_id } = await gpu!.workflows.submit({
      name: "analyze-cameras",
      steps: [
        { id: "analyze", tool: "camera_probe", for_each: { nodes: { capabilities: ["camera"] } }, input: { frames: 3 }, timeout_ms: 5000, retries: 1 },
        { id: "summarize", tool: "collect", needs: ["analyze"], input: { prompt: "Summarize", context: { $from: "analyze" } } },
      ],
    });
    const result = await gpu!.workflows.wait(workflow_id);
    expect(WorkflowResultSchema.parse(result)).toEqual(result);
    expect(result).toMatchObject({
      workflow_id,
      status: "complete",
      steps_completed: 3,
      steps_failed: 0,
      failures: [],
      result: {
        summarize: {
          got: {
            prompt: "Summarize",
            context: [
              { camera: "edge-01", frames: 3, verdict: "normal" },
              { camera: "edge-02", frames: 3, verdict: "normal" },
            ],
          },
        },
      },
    });
    expect(result.nodes_used).toEqual(expect.arrayContaining(["edge-01", "edge-02"]));
    expect(result.total_time_ms).toBeGreaterThanOrEqual(0);
    // Any node answers for it.
    const state = await a!.workflows.state(workflow_id);
    expect(WorkflowStateSchema.parse(state)).toEqual(state);
    expect(Object.keys(state.steps)).toEqual(["analyze[0]", "analyze[1]", "summarize"]);
    expect(state.steps["analyze[0]"]).toMatchObject({ status: "complete", node: "edge-01", attempts: 1, tool: "camera_probe", result: { camera: "edge-01" } });
    expect(state.steps["analyze[1]"]?.node).toBe("edge-02");
    expect(state).toMatchObject({ status: "complete", owner: "gpu-01", progress: { done: 3, total: 3 } });
    expect(state.started_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect((await a!.workflows.result(workflow_id)).status).toBe("complete");
  });

  it("a step that times out is retried once, then failed; the workflow is failed when its only final step failed", async () => {
    const [a] = await cluster([{ name: "a" }, { name: "b" }]);
    const { workflow_id } = await a!.workflows.submit({ name: "t", steps: [{ id: "slow", tool: "sleep", input: { ms: 5_000 }, timeout_ms: 150, retries: 1 }] });
    const result = await a!.workflows.wait(workflow_id);
    expect(result.status).toBe("failed");
    expect(result.failures).toEqual([{ step: "slow", node: expect.any(String), error: { code: "SHOAL_ERR_STEP_TIMEOUT", message: expect.stringMatching(/150 ms \(attempt 2\)/) }, attempts: 2 }]);
    // Both attempts were really stopped: their signal fired.
    await expect.poll(() => timeline.filter((t) => t.step === "slow").map((t) => t.aborted)).toEqual([true, true]);
  });

  it("a tool that throws is retried, recorded, and the dependent step goes on with what exists", async () => {
    const [a] = await cluster([{ name: "a" }, { name: "b" }]);
    const { workflow_id } = await a!.workflows.submit({
      name: "partial",
      steps: [
        { id: "good", tool: "echo", input: { v: 1 } },
        { id: "bad", tool: "boom", retries: 2 },
        { id: "report", tool: "collect", input: { good: { $from: "good.v" }, bad: { $from: "bad" } } },
      ],
    });
    const result = await a!.workflows.wait(workflow_id);
    expect(result).toMatchObject({ status: "partial", steps_completed: 2, steps_failed: 1, result: { report: { got: { good: 1, bad: null } } } });
    expect(result.failures).toEqual([{ step: "bad", node: expect.any(String), error: { code: "SHOAL_ERR_ACTOR_FAILED", message: "tool exploded" }, attempts: 3 }]);
  });

  it("on_missing: fail makes the dependent step fail instead", async () => {
    const [a] = await cluster([{ name: "a" }]);
    const { workflow_id } = await a!.workflows.submit({
      name: "strict",
      steps: [
        { id: "bad", tool: "boom", retries: 0 },
        { id: "after", tool: "echo", needs: ["bad"], on_missing: "fail" },
      ],
    });
    const result = await a!.workflows.wait(workflow_id);
    expect(result.status).toBe("failed");
    expect(result.failures.map((f) => [f.step, f.error.code, f.attempts])).toEqual([
      ["bad", "SHOAL_ERR_ACTOR_FAILED", 1],
      ["after", "SHOAL_ERR_MISSING_INPUT", 0],
    ]);
  });

  it("a retried tool succeeds on its second attempt with the same idempotency key", async () => {
    const [a] = await cluster([{ name: "a" }]);
    const { workflow_id } = await a!.workflows.submit({ name: "flaky", steps: [{ id: "f", tool: "flaky", input: { failures: 1 }, retries: 1 }] });
    const result = await a!.workflows.wait(workflow_id);
    expect(result).toMatchObject({ status: "complete", result: { f: { tries: 2, attempt: 2, key: `${workflow_id}/f` } } });
    expect((await a!.workflows.state(workflow_id)).steps.f?.attempts).toBe(2);
  });

  it("the deadline stops running steps and skips the rest", async () => {
    const [a] = await cluster([{ name: "a" }]);
    const { workflow_id } = await a!.workflows.submit({
      name: "late",
      deadline_ms: 200,
      steps: [
        { id: "quick", tool: "echo" },
        { id: "long", tool: "sleep", input: { ms: 10_000 } },
        { id: "then", tool: "echo", needs: ["long"] },
      ],
    });
    const result = await a!.workflows.wait(workflow_id);
    // `quick` is a final step too and it completed: partial, not failed.
    expect(result.status).toBe("partial");
    const state = await a!.workflows.state(workflow_id);
    expect(state.steps.quick?.status).toBe("complete");
    expect(state.steps.long).toMatchObject({ status: "failed", error: { code: "SHOAL_ERR_DEADLINE" } });
    expect(state.steps.then).toMatchObject({ status: "skipped", error: { code: "SHOAL_ERR_DEADLINE" } });
    expect(result.total_time_ms).toBeLessThan(2_000);
    await expect.poll(() => timeline.find((t) => t.step === "long")?.aborted).toBe(true);
  });

  it("cancel stops the running steps; the workflow ends partial", async () => {
    const [a, b] = await cluster([{ name: "a" }, { name: "b" }]);
    const { workflow_id } = await a!.workflows.submit({
      name: "cancel-me",
      steps: [
        { id: "done", tool: "echo" },
        { id: "long", tool: "sleep", input: { ms: 10_000 } },
      ],
    });
    await expect.poll(async () => (await a!.workflows.state(workflow_id)).steps.long?.status).toBe("running");
    const state = await b!.workflows.cancel(workflow_id);
    expect(state.steps.long).toMatchObject({ status: "failed", error: { code: "SHOAL_ERR_CANCELLED" } });
    expect((await a!.workflows.wait(workflow_id)).status).toBe("partial");
  });

  it("result is refused while the workflow runs", async () => {
    const [a, b] = await cluster([{ name: "a" }, { name: "b" }]);
    const { workflow_id } = await a!.workflows.submit({ name: "running", steps: [{ id: "long", tool: "sleep", input: { ms: 300 } }] });
    await expect(a!.workflows.result(workflow_id)).rejects.toMatchObject({ code: "SHOAL_ERR_WORKFLOW_RUNNING" });
    await expect(b!.workflows.result(workflow_id)).rejects.toMatchObject({ code: "SHOAL_ERR_WORKFLOW_RUNNING" });
    await expect(b!.workflows.state("wf_nothinghere")).rejects.toMatchObject({ code: "SHOAL_ERR_UNKNOWN_WORKFLOW" });
  });

  it("independent steps overlap in time, dependent ones do not, and max_parallel holds", async () => {
    const [a] = await cluster([{ name: "a", slots: 8 }, { name: "b", slots: 8 }]);
    const { workflow_id } = await a!.workflows.submit({
      name: "shape",
      max_parallel: 2,
      steps: [
        { id: "p1", tool: "sleep", input: { ms: 150 } },
        { id: "p2", tool: "sleep", input: { ms: 150 } },
        { id: "p3", tool: "sleep", input: { ms: 150 } },
        { id: "last", tool: "sleep", needs: ["p1", "p2", "p3"], input: { ms: 10 } },
      ],
    });
    expect((await a!.workflows.wait(workflow_id)).status).toBe("complete");
    const at = (id: string) => timeline.find((t) => t.step === id)!;
    // p1 and p2 ran together; p3 waited for a place (max_parallel 2); last waited for all three.
    expect(at("p1").start).toBeLessThan(at("p2").end);
    expect(at("p2").start).toBeLessThan(at("p1").end);
    expect(at("p3").start).toBeGreaterThanOrEqual(Math.min(at("p1").end, at("p2").end));
    expect(at("last").start).toBeGreaterThanOrEqual(Math.max(at("p1").end, at("p2").end, at("p3").end));
    const mine = timeline.filter((t) => ["p1", "p2", "p3", "last"].includes(t.step));
    const points = mine.flatMap((t) => [{ t: t.start, d: 1 }, { t: t.end, d: -1 }]).sort((x, y) => x.t - y.t || x.d - y.d);
    let now = 0;
    let peak = 0;
    for (const p of points) {
      now += p.d;
      peak = Math.max(peak, now);
    }
    expect(peak, JSON.stringify(mine)).toBe(2);
  });

  it("fans out over items, each passed as input.item", async () => {
    const [a] = await cluster([{ name: "a" }]);
    const { workflow_id } = await a!.workflows.submit({
      name: "items",
      steps: [
        { id: "each", tool: "echo", for_each: { items: ["x", "y", "z"] }, input: { tag: 1 } },
        { id: "all", tool: "collect", input: { $from: "each" } },
      ],
    });
    const result = await a!.workflows.wait(workflow_id);
    expect(result.result).toEqual({ all: { got: [{ tag: 1, item: "x" }, { tag: 1, item: "y" }, { tag: 1, item: "z" }] } });
    expect(result.steps_completed).toBe(4);
  });
});

describe("workflows with a store, stopped and resumed (in process)", () => {
  /** The orchestrator of `node` with a store in `file`, as a restarted node would build it. */
  const orchestrator = (node: WorkflowNode, file: string, extra: Partial<ConstructorParameters<typeof WorkflowService>[0]> = {}) => {
    const store = WorkflowStore.open(file);
    stores.push(store);
    return { store, workflows: new WorkflowService({ runtime: node.runtime, mesh: node.mesh, transport: node.node.transport, logger: silentLogger, store, saveIntervalMs: 1, ...extra }) };
  };
  /** Workflows accepted, then the node stopped cleanly; `crashes` more resumes of each are counted as begun and never survived. */
  const storedThenStopped = async (node: WorkflowNode, file: string, specs: object[], crashes: number[]) => {
    const before = orchestrator(node, file);
    const ids: string[] = [];
    for (const spec of specs) ids.push((await before.workflows.submit(spec)).workflow_id);
    for (const id of ids) await expect.poll(async () => Object.values((await before.workflows.state(id)).steps).some((st) => st.status === "running")).toBe(true);
    before.workflows.close();
    ids.forEach((id, i) => {
      for (let k = 0; k < (crashes[i] ?? 0); k++) before.store.resumesBegun([id]);
    });
    before.store.close();
    return ids;
  };
  const resumesIn = (store: WorkflowStore, node: WorkflowNode) => Object.fromEntries(store.unfinished(node.node.transport.identity.id).map((w) => [w.id, w.resumes]));
  const storeFile = () => join(mkdtempSync(join(tmpdir(), "shoal-resume-")), "workflows.db");

  it("a step resumes at the attempt it had reached, with the same key; a step that ended is not run again", async () => {
    const [a] = await cluster([{ name: "a" }, { name: "b" }]);
    const file = storeFile();
    const before = orchestrator(a!, file);
    const { workflow_id } = await before.workflows.submit({
      name: "resume-attempts",
      steps: [
        { id: "first", tool: "sleep", input: { ms: 1, out: "first done" } },
        { id: "second", tool: "fail_first", needs: ["first"], input: { ms: 300 }, retries: 2 },
      ],
    });
    await expect.poll(async () => (await before.workflows.state(workflow_id)).steps.second?.attempts, { timeout: 5_000 }).toBe(2);
    before.workflows.close();
    before.store.close();
    const after = orchestrator(a!, file);
    expect(await after.workflows.resume()).toEqual({ resumed: 1, ended: 0, handedOver: 0, quarantined: 0 });
    const result = await after.workflows.wait(workflow_id);
    expect(result).toMatchObject({ status: "complete", result: { second: { attempt: 2, key: `${workflow_id}/second` } } });
    const state = await after.workflows.state(workflow_id);
    expect(state.steps.second).toMatchObject({ status: "complete", attempts: 2 });
    expect(timeline.filter((t) => t.step === "first")).toHaveLength(1);
    // 1 failed, 2 stopped by the shutdown, 2 again after the resume: not back to 1.
    expect(attemptLog.map((r) => r.attempt)).toEqual([1, 2, 2]);
  });

  it("the deadline still counts from when the workflow was accepted", async () => {
    const [a] = await cluster([{ name: "a" }]);
    const file = storeFile();
    const before = orchestrator(a!, file);
    const { workflow_id } = await before.workflows.submit({ name: "resume-deadline", deadline_ms: 1_500, steps: [{ id: "long", tool: "sleep", input: { ms: 10_000 } }] });
    await expect.poll(async () => (await before.workflows.state(workflow_id)).steps.long?.status).toBe("running");
    before.workflows.close();
    before.store.close();
    await new Promise((r) => setTimeout(r, 1_000)); // down for a while, as a restart would be
    const after = orchestrator(a!, file);
    const resumedAt = performance.now();
    await after.workflows.resume();
    const result = await after.workflows.wait(workflow_id);
    expect(result.failures).toEqual([{ step: "long", node: expect.any(String), error: { code: "SHOAL_ERR_DEADLINE", message: expect.any(String) }, attempts: 1 }]);
    // total_time_ms is wall time in whole ms at both ends, the deadline a timer on the loop's
    // ms-granular clock: the two may differ by a millisecond (seen: 1,499 in a CI run).
    expect(result.total_time_ms).toBeGreaterThanOrEqual(1_495);
    // Counted from acceptance it ends about 0.5 s after the resume; counted from the resume it
    // would take the whole 1.5 s again. The margin between the two is what a loaded box gets.
    expect(performance.now() - resumedAt).toBeLessThan(1_300);
  });

  it("resume without a store, or twice, takes nothing back twice", async () => {
    const [a] = await cluster([{ name: "a" }]);
    const file = storeFile();
    const first = orchestrator(a!, file);
    const { workflow_id } = await first.workflows.submit({ name: "quick", steps: [{ id: "only", tool: "echo", input: { v: 1 } }] });
    await first.workflows.wait(workflow_id);
    first.store.close();
    const again = orchestrator(a!, file);
    expect(await again.workflows.resume()).toEqual({ resumed: 0, ended: 1, handedOver: 0, quarantined: 0 });
    expect(await again.workflows.resume()).toEqual({ resumed: 0, ended: 0, handedOver: 0, quarantined: 0 });
    expect((await again.workflows.result(workflow_id)).status).toBe("complete");
    expect(await a!.workflows.resume()).toEqual({ resumed: 0, ended: 0, handedOver: 0, quarantined: 0 });
  });

  it("a workflow whose last 2 resumes crashed the node is quarantined: ended failed with SHOAL_ERR_QUARANTINED, not run again", async () => {
    const [a] = await cluster([{ name: "a" }]);
    const file = storeFile();
    const [id] = (await storedThenStopped(a!, file, [{ name: "poison", steps: [{ id: "done", tool: "echo", input: { v: 1 } }, { id: "long", tool: "sleep", needs: ["done"], input: { ms: 10_000 } }, { id: "after", tool: "echo", needs: ["long"] }] }], [2])) as [string];
    const resumedAt = Date.now();
    const after = orchestrator(a!, file);
    expect(await after.workflows.resume()).toEqual({ resumed: 0, ended: 0, handedOver: 0, quarantined: 1 });
    const state = await after.workflows.state(id);
    expect(state.status).toBe("failed");
    expect(state.steps.done).toMatchObject({ status: "complete" });
    expect(state.steps.long).toMatchObject({ status: "failed", error: { code: "SHOAL_ERR_QUARANTINED", message: expect.stringMatching(/crashed a each of the 2 times it was resumed/) } });
    expect(state.steps.after).toMatchObject({ status: "skipped", error: { code: "SHOAL_ERR_QUARANTINED" } });
    const result = await after.workflows.result(id);
    expect(WorkflowResultSchema.parse(result)).toMatchObject({ status: "failed", steps_completed: 1, failures: [{ step: "long", error: { code: "SHOAL_ERR_QUARANTINED" } }, { step: "after", error: { code: "SHOAL_ERR_QUARANTINED" } }] });
    await new Promise((r) => setTimeout(r, 100));
    expect(timeline.filter((t) => t.start >= resumedAt)).toEqual([]); // nothing of it ran again
    expect(after.store.unfinished(a!.node.transport.identity.id)).toEqual([]);
    expect(after.store.endedWorkflows().map((w) => [w.id, w.result.status])).toEqual([[id, "failed"]]);
  });

  it("a resume is counted before the workflow runs and cleared once it survived; suspects wait, alone, until the others survived", async () => {
    const [a] = await cluster([{ name: "a" }]);
    const file = storeFile();
    const spec = (name: string) => ({ name, steps: [{ id: name, tool: "sleep", input: { ms: 600, out: name } }] });
    const [fresh, suspect] = (await storedThenStopped(a!, file, [spec("fresh"), spec("suspect")], [0, 1])) as [string, string];
    const resumedAt = Date.now();
    const after = orchestrator(a!, file, { survivalMs: 300 });
    expect(await after.workflows.resume()).toEqual({ resumed: 2, ended: 0, handedOver: 0, quarantined: 0 });
    expect(resumesIn(after.store, a!)).toEqual({ [fresh]: 1, [suspect]: 1 });
    // The suspect is owned and shown, but waits while the other one is on trial.
    const waiting = await after.workflows.state(suspect);
    expect(waiting).toMatchObject({ status: "running", owner: "a", steps: { suspect: { status: "pending", placement: expect.stringMatching(/^waiting: /) } } });
    expect(after.workflows.running).toBe(2);
    await expect.poll(() => resumesIn(after.store, a!)[suspect], { timeout: 2_000 }).toBe(2);
    expect(resumesIn(after.store, a!)[fresh]).toBe(0);
    await expect.poll(() => resumesIn(after.store, a!)[suspect], { timeout: 2_000 }).toBe(0);
    expect(await after.workflows.wait(suspect)).toMatchObject({ status: "complete", result: { suspect: "suspect" } });
    expect(await after.workflows.wait(fresh)).toMatchObject({ status: "complete", result: { fresh: "fresh" } });
    // The suspect's step started only once the fresh one had run through its 300 ms trial.
    const startOf = (step: string) => timeline.find((t) => t.step === step && t.start >= resumedAt)?.start as number;
    expect(startOf("fresh") - resumedAt).toBeLessThan(300);
    expect(startOf("suspect") - resumedAt).toBeGreaterThanOrEqual(300);
  });

  it("a clean stop clears the count of a resume still on trial", async () => {
    const [a] = await cluster([{ name: "a" }]);
    const file = storeFile();
    const [id] = (await storedThenStopped(a!, file, [{ name: "calm", steps: [{ id: "long", tool: "sleep", input: { ms: 5_000 } }] }], [0])) as [string];
    const after = orchestrator(a!, file, { survivalMs: 60_000 });
    await after.workflows.resume();
    expect(resumesIn(after.store, a!)).toEqual({ [id]: 1 });
    after.workflows.close();
    expect(resumesIn(after.store, a!)).toEqual({ [id]: 0 });
  });

  it("refuses a workflow past --max-workflows with SHOAL_ERR_OVERLOADED and a retry hint; an ended one frees its place", async () => {
    const [a] = await cluster([{ name: "a" }]);
    const workflows = new WorkflowService({ runtime: a!.runtime, mesh: a!.mesh, transport: a!.node.transport, logger: silentLogger, maxWorkflows: 2 });
    const long = { name: "long", steps: [{ id: "s", tool: "sleep", input: { ms: 300 } }] };
    const first = (await workflows.submit(long)).workflow_id;
    await workflows.submit(long);
    await expect(workflows.submit(long)).rejects.toMatchObject({ code: "SHOAL_ERR_OVERLOADED", retryAfterMs: 1_000, message: expect.stringMatching(/a already runs 2 workflows, its maximum \(--max-workflows 2\)/) });
    await workflows.wait(first);
    expect((await workflows.submit(long)).workflow_id).toMatch(/^wf_/);
  });

  it("refuses a spec over --max-workflow-instances before storing anything", async () => {
    const [a] = await cluster([{ name: "a" }]);
    const file = storeFile();
    const { store, workflows } = orchestrator(a!, file, { maxWorkflowInstances: 10 });
    await expect(workflows.submit({ name: "big", steps: [{ id: "each", tool: "echo", for_each: { items: Array.from({ length: 11 }, (_, i) => i) } }] })).rejects.toThrow(
      expect.objectContaining({ code: "SHOAL_ERR_TOO_MANY_INSTANCES", path: ["steps", 0, "for_each"] }),
    );
    expect(store.unfinished(a!.node.transport.identity.id)).toEqual([]);
    expect(workflows.running).toBe(0);
  });

  it("a backup that takes a workflow over counts the resume, from the count its owner sent: past 2 it quarantines instead", async () => {
    const [a, b] = await cluster([{ name: "a", slots: 0 }, { name: "b" }]);
    const spec = { name: "suspect", steps: [{ id: "long", tool: "sleep", input: { ms: 10_000 } }] };
    // a's store holds it with one resume that crashed: resumed again, its count is 2 and goes to b with the copy.
    const fileA = storeFile();
    const [id] = (await storedThenStopped(a!, fileA, [spec], [1])) as [string];
    const backup = orchestrator(b!, storeFile(), { survivalMs: 60_000 });
    const owner = orchestrator(a!, fileA, { survivalMs: 60_000 });
    await owner.workflows.resume();
    await expect.poll(() => backup.store.unfinished(a!.node.transport.identity.id).map((w) => [w.id, w.resumes]), { timeout: 3_000 }).toEqual([[id, 2]]);
    await a!.crash(); // within its trial: the second crash of a resume
    await expect.poll(async () => (await backup.workflows.state(id).catch(() => undefined))?.status, { timeout: 5_000 }).toBe("failed");
    expect((await backup.workflows.state(id)).steps.long).toMatchObject({ status: "failed", error: { code: "SHOAL_ERR_QUARANTINED" } });
    expect(backup.workflows.ownershipStats.takenOver).toBe(1);

    // A copy whose resumes survived is taken over as a resume begun: counted, then cleared.
    const [c, d] = await cluster([{ name: "c", slots: 0 }, { name: "d" }]);
    const backupD = orchestrator(d!, storeFile(), { survivalMs: 200 });
    const ownerC = orchestrator(c!, storeFile());
    const fresh = (await ownerC.workflows.submit(spec)).workflow_id;
    await expect.poll(() => backupD.store.unfinished(c!.node.transport.identity.id).map((w) => [w.id, w.resumes]), { timeout: 3_000 }).toEqual([[fresh, 0]]);
    await c!.crash();
    const self = d!.node.transport.identity.id;
    await expect.poll(() => backupD.store.unfinished(self).map((w) => [w.id, w.resumes]), { timeout: 5_000 }).toEqual([[fresh, 1]]);
    await expect.poll(() => backupD.store.unfinished(self).map((w) => [w.id, w.resumes]), { timeout: 3_000 }).toEqual([[fresh, 0]]);
    expect((await backupD.workflows.state(fresh)).status).toBe("running");
  });
});
