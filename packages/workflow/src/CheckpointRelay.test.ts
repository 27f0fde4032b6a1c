import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "@shoal/protocol";
import { EventEmitter } from "node:events";
import type { Checkpoint } from "@shoal/protocol";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CheckpointRelay, type StepCheckpoint } from "./CheckpointRelay.js";
import { type WorkflowNode, resetRecords, startWorkflowCluster } from "./testing/workflowCluster.js";
import { WorkflowService, type WorkflowServiceOptions } from "./WorkflowService.js";
import { WorkflowStore } from "./WorkflowStore.js";

const nodes: WorkflowNode[] = [];
const stores: WorkflowStore[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
  for (const s of stores.splice(0)) s.close();
  resetRecords();
});
const orchestrator = (node: WorkflowNode, extra: Partial<WorkflowServiceOptions> = {}) => {
  const store = WorkflowStore.open(join(mkdtempSync(join(tmpdir(), "shoal-checkpoint-")), "workflows.db"));
  stores.push(store);
  const workflows = new WorkflowService({ runtime: node.runtime, mesh: node.mesh, transport: node.node.transport, logger: silentLogger, store, saveIntervalMs: 1, ...extra });
  return { node, store, workflows };
};
const idOf = (n: WorkflowNode) => n.node.transport.identity.id;
type Copy = { records: Record<string, { attempts: number; checkpoint?: { persisted: { context: { count: number } } } }> };
const countIn = (copy: Copy | undefined) => copy?.records.count?.checkpoint?.persisted.context.count;
const counting = {
  name: "counting",
  steps: [
    { id: "count", agent: "counter", input: { start: 0 } },
    { id: "after", tool: "echo", needs: ["count"], input: { counted: { $from: "count" } } },
  ],
};

describe("agent checkpoints travel with the workflow's copy (in process, real transports and stores)", () => {
  it("the backup that takes the workflow over starts the agent from its last copied checkpoint, at the same try, and the workflow ends with the whole count", async () => {
    const started = await startWorkflowCluster([{ name: "a", slots: 0 }, { name: "b" }, { name: "c" }]);
    nodes.push(...started);
    const [a, b, c] = started as [WorkflowNode, WorkflowNode, WorkflowNode];
    const owner = orchestrator(a, { checkpointIntervalMs: 20 });
    const backups = [orchestrator(b, { checkpointIntervalMs: 20 }), orchestrator(c, { checkpointIntervalMs: 20 })];
    const { workflow_id } = await owner.workflows.submit(counting);
    await expect.poll(async () => (await owner.workflows.state(workflow_id)).steps.count, { timeout: 5_000 }).toMatchObject({ status: "running" });
    const actorId = (await owner.workflows.state(workflow_id)).steps.count?.actor as string;
    for (let i = 0; i < 3; i++) await a.runtime.send(actorId, { type: "INC" });
    // The backup's copy (on its disk) holds the checkpoint with the count; throttled, so it comes a little later.
    const copyOn = (bk: (typeof backups)[number]) => bk.store.unfinished(idOf(a)).find((w) => w.id === workflow_id) as Copy | undefined;
    await expect.poll(() => backups.map((bk) => countIn(copyOn(bk))).filter((n) => n !== undefined), { timeout: 5_000 }).toEqual([3]);
    const taker = backups.find((bk) => countIn(copyOn(bk)) === 3) as (typeof backups)[number];
    await a.crash();
    await expect.poll(() => taker.workflows.ownershipStats.takenOver, { timeout: 5_000 }).toBe(1);
    const moved = async () => {
      const step = (await taker.workflows.state(workflow_id)).steps.count;
      const record = step?.actor ? taker.node.runtime.supervisor.get(step.actor) : undefined;
      return { actor: step?.actor, status: record?.status, count: (record?.view.context as { count?: number } | undefined)?.count, attempts: step?.attempts };
    };
    await expect.poll(moved, { timeout: 5_000 }).toMatchObject({ status: "running", count: 3, attempts: 1 });
    const newId = (await moved()).actor as string;
    expect(newId).not.toBe(actorId);
    // Same step key, as a migrated actor.
    expect(taker.node.runtime.supervisor.get(newId)).toMatchObject({ key: `${workflow_id}/count`, attempt: 1, migrations: 1 });
    for (let i = 0; i < 2; i++) await taker.node.runtime.send(newId, { type: "INC" });
    await taker.node.runtime.send(newId, { type: "DONE" });
    const result = await taker.workflows.wait(workflow_id);
    expect(result).toMatchObject({ status: "complete", result: { after: { counted: 5 } } });
    expect((await taker.workflows.state(workflow_id)).steps.count).toMatchObject({ status: "complete", result: 5 });
  });
});

describe("CheckpointRelay (throttling)", () => {
  const checkpoint = (count: number, padding = ""): Checkpoint => ({ persisted: { value: "counting", context: { count, padding } }, timers: [], seq: count });
  const agent = (id: string, step: string) => ({
    id,
    finished: false,
    attempt: 1,
    labels: { workflowId: "wf_0123abcdtest", stepId: step },
    checkpoint: undefined as Checkpoint | undefined,
    restoreFrom() {
      return this.checkpoint;
    },
  });
  const relay = (maxBytes?: number) => {
    const supervisor = new EventEmitter();
    const copies: { workflowId: string; steps: StepCheckpoint[] }[] = [];
    const r = new CheckpointRelay({
      subscribe: (listener) => {
        supervisor.on("changed", listener);
        return () => supervisor.off("changed", listener);
      },
      logger: silentLogger,
      intervalMs: 100,
      ...(maxBytes !== undefined && { maxBytes }),
      owns: (id) => id === "wf_0123abcdtest",
      copy: (workflowId, steps) => copies.push({ workflowId, steps }),
    });
    return { supervisor, copies, r };
  };
  afterEach(() => {
    vi.useRealTimers();
  });

  it("many checkpoints of a step within one interval make one copy, of the newest; an unchanged one makes none; one over the bound none", () => {
    vi.useFakeTimers();
    const { supervisor, copies, r } = relay(1_000);
    const x = agent("a~1", "count");
    const y = agent("a~2", "other");
    for (let n = 1; n <= 50; n++) {
      x.checkpoint = checkpoint(n);
      supervisor.emit("changed", x);
    }
    y.checkpoint = checkpoint(7);
    supervisor.emit("changed", y);
    expect(copies).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(copies).toEqual([
      {
        workflowId: "wf_0123abcdtest",
        steps: [
          { instance: "count", attempt: 1, checkpoint: checkpoint(50) },
          { instance: "other", attempt: 1, checkpoint: checkpoint(7) },
        ],
      },
    ]);
    // The same checkpoint again (another change of the actor, not of its state): nothing to copy.
    supervisor.emit("changed", x);
    vi.advanceTimersByTime(100);
    expect(copies).toHaveLength(1);
    x.checkpoint = checkpoint(51, "x".repeat(2_000));
    supervisor.emit("changed", x);
    vi.advanceTimersByTime(100);
    expect(copies).toHaveLength(1);
    r.close();
  });
});
