import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
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
async function cluster(specs: Parameters<typeof startWorkflowCluster>[0]) {
  const started = await startWorkflowCluster(specs);
  nodes.push(...started);
  return started;
}
const orchestrator = (node: WorkflowNode, extra: Partial<WorkflowServiceOptions> = {}) => {
  const store = WorkflowStore.open(join(mkdtempSync(join(tmpdir(), "shoal-backup-")), "workflows.db"));
  stores.push(store);
  return { store, workflows: new WorkflowService({ runtime: node.runtime, mesh: node.mesh, transport: node.node.transport, logger: silentLogger, store, saveIntervalMs: 1, ...extra }) };
};
const idOf = (n: WorkflowNode) => n.node.transport.identity.id;
const long = { name: "long", steps: [{ id: "s", tool: "sleep", input: { ms: 600 } }] };

describe("backups of a workflow (in process, real transports and stores)", () => {
  it("a replicated submit resolves once its backup has the copy; the state counts the copies, 0 while no peer is up", async () => {
    const [a, b] = await cluster([{ name: "a" }, { name: "b" }]);
    const owner = orchestrator(a!);
    const backup = orchestrator(b!);
    const { workflow_id } = await owner.workflows.submit(long);
    // No wait: the answer came after the copy was stored (and synced) there.
    expect(backup.store.unfinished(idOf(a!)).map((w) => w.id)).toEqual([workflow_id]);
    expect((await owner.workflows.state(workflow_id)).copies).toBe(1);

    const [solo] = await cluster([{ name: "solo" }]);
    const alone = orchestrator(solo!);
    const lonely = (await alone.workflows.submit(long)).workflow_id;
    expect((await alone.workflows.state(lonely)).copies).toBe(0);
  });

  it("with 2 replicas both backups keep a copy; when the owner goes, the first of them in the copy's order takes over, the other keeps the new owner's copy", async () => {
    const [a, b, c] = await cluster([{ name: "a", slots: 0 }, { name: "b" }, { name: "c" }]);
    const owner = orchestrator(a!, { replicas: 2 });
    const backups = [orchestrator(b!), orchestrator(c!)];
    const { workflow_id } = await owner.workflows.submit({ name: "slow", steps: [{ id: "s", tool: "sleep", input: { ms: 1_500 } }] });
    for (const bk of backups) expect(bk.store.unfinished(idOf(a!)).map((w) => w.id)).toEqual([workflow_id]);
    expect((await owner.workflows.state(workflow_id)).copies).toBe(2);
    await a!.crash();
    await expect.poll(() => backups.map((bk) => bk.workflows.ownershipStats.takenOver).sort(), { timeout: 5_000 }).toEqual([0, 1]);
    const taker = backups.find((bk) => bk.workflows.ownershipStats.takenOver === 1)!;
    const other = backups.find((bk) => bk !== taker)!;
    const takerId = taker === backups[0] ? idOf(b!) : idOf(c!);
    // The first after a in the ring of node ids.
    expect(takerId).toBe([idOf(b!), idOf(c!)].sort().find((id) => id > idOf(a!)) ?? [idOf(b!), idOf(c!)].sort()[0]);
    await expect.poll(() => other.store.ownership(workflow_id), { timeout: 5_000 }).toEqual({ owner: takerId, epoch: 2 });
    expect((await taker.workflows.wait(workflow_id)).status).toBe("complete");
    // Ended: its backup keeps the end, as the new owner's, and answers for it.
    await expect.poll(() => other.store.endedWorkflows().map((w) => [w.id, w.owner, w.result.status]), { timeout: 5_000 }).toEqual([[workflow_id, takerId, "complete"]]);
    expect((await other.workflows.result(workflow_id)).status).toBe("complete");
  });
});
