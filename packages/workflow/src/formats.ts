import type { StepState, WorkflowResult, WorkflowState } from "@shoal/protocol";
import type { InstanceRecord, WorkflowContext } from "./workflowMachine.js";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** How a whole step (all its instances) ended: complete if all did, failed if none did. */
function stepOutcome(recs: InstanceRecord[]): "complete" | "failed" | "partial" {
  const done = recs.filter((r) => r.status === "complete").length;
  return done === recs.length ? "complete" : done === 0 ? "failed" : "partial";
}

/**
 * `complete` when every step completed; `failed` when every final step (one no other step
 * needs) failed or never ran; `partial` otherwise.
 */
export function workflowStatus(ctx: WorkflowContext): "running" | "complete" | "partial" | "failed" {
  if (ctx.endedAt === null) return "running";
  const recs = Object.values(ctx.instances);
  if (recs.every((r) => r.status === "complete")) return "complete";
  const finals = [...ctx.plan.steps.values()].filter((s) => s.final);
  const finalFailed = finals.every((s) => stepOutcome(s.instances.map((i) => ctx.instances[i.id] as InstanceRecord)) === "failed");
  return finalFailed ? "failed" : "partial";
}

/** The seed's state format. */
/** What only the runtime knows of a step: where its actor runs and why. */
export interface StepDetails {
  placement: string | null;
}

export function stateOf(ctx: WorkflowContext, owner: string, detailsOf: (instance: string, actorId: string | null) => StepDetails): WorkflowState {
  const steps: Record<string, StepState> = {};
  let done = 0;
  for (const r of Object.values(ctx.instances)) {
    if (r.status === "complete" || r.status === "failed" || r.status === "skipped") done++;
    const details = detailsOf(r.id, r.actor);
    steps[r.id] = {
      status: r.status,
      node: r.node,
      attempts: r.attempts,
      tool: r.logic,
      ...(r.status === "complete" && { result: r.result }),
      ...(r.error && { error: r.error }),
      started_at: iso(r.startedAt),
      ended_at: iso(r.endedAt),
      placement: details.placement,
      needs: ctx.plan.steps.get(r.step)?.deps ?? [],
      actor: r.actor,
      ...(r.input !== undefined && { input: r.input }),
    };
  }
  return {
    workflow_id: ctx.workflowId,
    name: ctx.plan.spec.name,
    status: workflowStatus(ctx),
    steps,
    started_at: new Date(ctx.startedAt).toISOString(),
    ended_at: iso(ctx.endedAt),
    owner,
    progress: { done, total: Object.keys(ctx.instances).length },
  };
}

/** The seed's response format; only for a workflow that has ended. */
export function resultOf(ctx: WorkflowContext): WorkflowResult {
  const status = workflowStatus(ctx);
  if (status === "running") throw new Error("resultOf: the workflow is still running");
  const result: Record<string, unknown> = {};
  for (const step of ctx.plan.steps.values()) {
    if (!step.final) continue;
    const recs = step.instances.map((i) => ctx.instances[i.id] as InstanceRecord);
    if (step.fanOut) result[step.spec.id] = recs.filter((r) => r.status === "complete").map((r) => r.result);
    else if (recs[0]?.status === "complete") result[step.spec.id] = recs[0].result;
  }
  const recs = Object.values(ctx.instances);
  return {
    workflow_id: ctx.workflowId,
    status,
    result,
    steps_completed: recs.filter((r) => r.status === "complete").length,
    steps_failed: recs.filter((r) => r.status === "failed").length,
    total_time_ms: (ctx.endedAt ?? Date.now()) - ctx.startedAt,
    nodes_used: [...new Set(recs.filter((r) => r.attempts > 0 && r.node !== null).map((r) => r.node as string))].sort(),
    failures: recs
      .filter((r) => r.status === "failed" || r.status === "skipped")
      .map((r) => ({ step: r.id, node: r.node, error: r.error ?? { code: "SHOAL_ERR_ACTOR_FAILED", message: "failed" }, attempts: r.attempts })),
  };
}
