import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Clock, monotonicNow, silentLogger } from "@shoal/protocol";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type WorkflowNode, resetRecords, startWorkflowCluster } from "./testing/workflowCluster.js";
import { WorkflowDeadlines } from "./WorkflowDeadlines.js";
import { WorkflowService } from "./WorkflowService.js";
import { WorkflowStore } from "./WorkflowStore.js";

describe("WorkflowDeadlines", () => {
  let t = 0;
  const clock: Clock = () => t;

  it("turns the time left that a copy carried into a deadline on this node's clock", () => {
    t = 50_000;
    const d = new WorkflowDeadlines(clock);
    d.heard("wf_a", 1_500);
    t += 400;
    // started_at (a wall time of the owner's clock) is not read: the owner's clock is not ours.
    expect(d.leftFor("wf_a", 2_000, 0, 99_999_999)).toBe(1_100);
    t += 5_000;
    expect(d.leftFor("wf_a", 2_000, 0)).toBe(0);
    d.forget("wf_a");
    expect(d.leftFor("wf_a", 2_000, 1_000, 1_500)).toBe(1_500);
  });

  it("without one (a restarted owner), counts from started_at on the wall clock, never more than deadline_ms", () => {
    const d = new WorkflowDeadlines(clock);
    expect(d.leftFor("wf_b", undefined, 1_000, 1_200)).toBeUndefined();
    // Down for 300 ms of the 800: they count.
    expect(d.leftFor("wf_b", 800, 1_000, 1_300)).toBe(500);
    // The wall clock set back an hour while it was down: not an hour more.
    expect(d.leftFor("wf_b", 800, 1_000, 1_000 - 3_600_000)).toBe(800);
    // Set forward: it is over.
    expect(d.leftFor("wf_b", 800, 1_000, 1_000 + 3_600_000)).toBe(0);
    // A copy that said nothing of a deadline leaves it to the wall clock.
    d.heard("wf_b", undefined);
    expect(d.leftFor("wf_b", 800, 1_000, 1_300)).toBe(500);
  });
});

describe("a workflow's deadline across a takeover and a wall-clock step (in process)", () => {
  const nodes: WorkflowNode[] = [];
  const stores: WorkflowStore[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all(nodes.splice(0).map((n) => n.close()));
    for (const s of stores.splice(0)) s.close();
    resetRecords();
  });
  const withStore = (node: WorkflowNode) => {
    const store = WorkflowStore.open(join(mkdtempSync(join(tmpdir(), "shoal-deadline-")), "workflows.db"));
    stores.push(store);
    return { store, workflows: new WorkflowService({ runtime: node.runtime, mesh: node.mesh, transport: node.node.transport, logger: silentLogger, store, saveIntervalMs: 1 }) };
  };

  it("the backup runs it on with the time its owner had left: a wall clock an hour ahead does not end it at the takeover", async () => {
    const started = await startWorkflowCluster([{ name: "owner", slots: 0 }, { name: "backup" }]);
    nodes.push(...started);
    const [ownerNode, backupNode] = started as [WorkflowNode, WorkflowNode];
    const backup = withStore(backupNode);
    const owner = withStore(ownerNode);
    const deadlineMs = 1_500;
    const submitted = monotonicNow();
    const { workflow_id } = await owner.workflows.submit({ name: "budget", deadline_ms: deadlineMs, steps: [{ id: "long", tool: "sleep", input: { ms: 10_000 } }] });
    await expect.poll(() => backup.store.unfinished(ownerNode.node.transport.identity.id).map((w) => w.id), { timeout: 3_000 }).toEqual([workflow_id]);
    // The wall clock jumps an hour ahead; then the owner dies and the backup takes over.
    const wall = Date.now.bind(Date);
    vi.spyOn(Date, "now").mockImplementation(() => wall() + 3_600_000);
    await ownerNode.crash();
    await expect.poll(() => backup.workflows.ownershipStats.takenOver, { timeout: 5_000 }).toBe(1);
    const result = await backup.workflows.wait(workflow_id);
    const endedAfterMs = monotonicNow() - submitted;
    expect(result.failures).toEqual([{ step: "long", node: expect.any(String), error: { code: "SHOAL_ERR_DEADLINE", message: expect.any(String) }, attempts: 1 }]);
    // Ended by its deadline, as counted from the submission: not at once at the takeover, not a full deadline_ms after it.
    expect(endedAfterMs).toBeGreaterThanOrEqual(deadlineMs - 50);
    expect(endedAfterMs).toBeLessThan(deadlineMs + 1_000);
  });
});
