import type { WorkflowResult, WorkflowState } from "@shoal/protocol";
import { resultOf, stateOf } from "./formats.js";
import type { Plan } from "./planWorkflow.js";
import type { StoredWorkflow } from "./WorkflowStore.js";
import { type InstanceRecord, type WorkflowContext, initialContext } from "./workflowMachine.js";

/** A stored workflow as it would start running again, without running it: for the state of one that waits to. */
export function storedContext(stored: StoredWorkflow, plan: Plan): WorkflowContext {
  return initialContext(plan, { workflowId: stored.id, startedAt: stored.startedAt, restored: stored.records });
}

const TERMINAL = new Set(["complete", "failed", "skipped"]);

/**
 * Ends a workflow that is not running and will not run again (quarantined, or cancelled while
 * it waited to be resumed): instances that had not ended are `failed` with `error` if all they
 * need had ended (a resume would have run them), else `skipped`. `failed` makes the workflow end failed whatever its
 * steps did; there is always a failure entry with `error`'s code.
 */
export function endUnrun(
  ctx: WorkflowContext,
  owner: string,
  error: { code: string; message: string },
  options: { failed?: boolean; now?: number } = {},
): { state: WorkflowState; result: WorkflowResult } {
  const now = options.now ?? Date.now(); // wall time: the ended_at people read
  const ended = (stepId: string) => ctx.plan.steps.get(stepId)?.instances.every((i) => TERMINAL.has(ctx.instances[i.id]?.status ?? "pending")) ?? true;
  // Those whose dependencies had all ended are the ones a resume runs (and one of them crashed it).
  const runnable = new Set(Object.values(ctx.instances).filter((rec) => !TERMINAL.has(rec.status) && (ctx.plan.steps.get(rec.step)?.deps ?? []).every(ended)));
  for (const rec of Object.values(ctx.instances) as InstanceRecord[]) {
    if (TERMINAL.has(rec.status)) continue;
    Object.assign(rec, runnable.has(rec) ? { status: "failed", endedAt: now, error } : { status: "skipped", endedAt: now, error: { code: error.code, message: `never ran: ${error.message}` } });
  }
  ctx.endedAt = now;
  ctx.endedCount = ctx.plan.instances.length;
  const state = stateOf(ctx, owner, () => ({ placement: null }));
  const result = resultOf(ctx);
  if (!result.failures.some((f) => f.error.code === error.code)) result.failures.push({ step: "(workflow)", node: owner, error, attempts: 0 });
  if (options.failed) {
    state.status = "failed";
    result.status = "failed";
  }
  return { state, result };
}
