import { silentLogger } from "@shoal/protocol";
import { type RuntimeNode, converged, counter, startRuntimeNode } from "@shoal/runtime/testing";
import type { Definition } from "@shoal/tools";
import { WorkflowService } from "../WorkflowService.js";

/** Every start and end of `sleep`, for overlap and concurrency checks. */
export const timeline: { step: string; node: string; start: number; end: number; aborted: boolean }[] = [];
const tries = new Map<string, number>();
/** Every run of `fail_first`: which attempt each was. */
export const attemptLog: { step: string; attempt: number }[] = [];

export const workflowTestLogic: Definition[] = [
  { name: "echo", run: (input: unknown) => input },
  {
    name: "camera_probe",
    capabilities: ["camera"],
    run: (input: { frames?: number }, ctx) => ({ camera: ctx.node, frames: input.frames ?? 0, verdict: "normal" }),
  },
  {
    name: "sleep",
    run: (input: { ms: number; out?: unknown }, ctx) =>
      new Promise((resolve) => {
        const start = Date.now();
        const finish = (aborted: boolean) => {
          timeline.push({ step: ctx.stepId ?? "", node: ctx.node, start, end: Date.now(), aborted });
          resolve(input.out ?? ctx.node);
        };
        const timer = setTimeout(() => finish(false), input.ms);
        ctx.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          finish(true);
        });
      }),
  },
  {
    // Fails the first `failures` times for one idempotency key, then succeeds.
    name: "flaky",
    run: (input: { failures: number }, ctx) => {
      const n = (tries.get(ctx.key) ?? 0) + 1;
      tries.set(ctx.key, n);
      if (n <= input.failures) throw new Error(`flaky failure ${n} (attempt ${ctx.attempt})`);
      return { tries: n, attempt: ctx.attempt, key: ctx.key };
    },
  },
  {
    // Throws on its first attempt; later attempts sleep `ms` and say which attempt they were.
    name: "fail_first",
    run: (input: { ms: number }, ctx) => {
      attemptLog.push({ step: ctx.stepId ?? "", attempt: ctx.attempt });
      if (ctx.attempt === 1) throw new Error("first attempt fails on purpose");
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve({ attempt: ctx.attempt, key: ctx.key }), input.ms);
        ctx.signal.addEventListener("abort", () => clearTimeout(timer));
      });
    },
  },
  {
    name: "boom",
    run: () => {
      throw new Error("tool exploded");
    },
  },
  { name: "collect", run: (input: unknown) => ({ got: input }) },
  // An agent: counts INC, ends with the count on DONE.
  { name: "counter", machine: counter },
];

export interface WorkflowNode extends RuntimeNode {
  workflows: WorkflowService;
}

export async function startWorkflowCluster(specs: { name: string; capabilities?: string[]; slots?: number }[]): Promise<WorkflowNode[]> {
  const nodes: WorkflowNode[] = [];
  for (const spec of specs) {
    const seed = nodes[0];
    const n = await startRuntimeNode(spec.name, { ...spec, logic: workflowTestLogic, seeds: seed ? [seed.node.address] : [] });
    const workflows = new WorkflowService({ runtime: n.runtime, mesh: n.mesh, transport: n.node.transport, logger: silentLogger });
    nodes.push({ ...n, workflows });
  }
  await converged(nodes);
  return nodes;
}

export function resetRecords(): void {
  timeline.length = 0;
  attemptLog.length = 0;
  tries.clear();
}
