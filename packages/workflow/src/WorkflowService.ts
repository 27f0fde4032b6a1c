import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Mesh } from "@shoal/mesh";
import { type Logger, ShoalError, type WorkflowResult, type WorkflowState, isShoalError } from "@shoal/protocol";
import type { Runtime } from "@shoal/runtime";
import type { Transport } from "@shoal/transport";
import { type Actor, createActor, toPromise } from "xstate";
import { z } from "zod";
import { type StepDetails, resultOf, stateOf } from "./formats.js";
import { Notifier, type WorkflowNotice } from "./Notifier.js";
import { type Plan, planWorkflow } from "./planWorkflow.js";
import { type WorkflowContext, createWorkflowMachine } from "./workflowMachine.js";

export interface WorkflowServiceOptions {
  runtime: Runtime;
  mesh: Mesh;
  transport: Transport;
  logger: Logger;
  /** Ended workflows stay readable this long... */
  retainMs?: number;
  /** ...and at most this many of them (the oldest go first). */
  maxRetained?: number;
}

interface OwnedWorkflow {
  id: string;
  plan: Plan;
  actor: Actor<ReturnType<typeof createWorkflowMachine>>;
  ended: Promise<WorkflowResult>;
}

const IdBody = z.object({ id: z.string().max(64) });

/**
 * The orchestrator of a node: checks and starts workflows submitted here (this node owns them),
 * and answers for any workflow in the mesh by asking its owner.
 */
export interface WorkflowSummary {
  workflow_id: string;
  name: string;
  status: string;
  owner: string;
  started_at: string;
  progress: { done: number; total: number };
}

export class WorkflowService extends EventEmitter<{ changed: [workflowId: string] }> {
  private readonly owned = new Map<string, OwnedWorkflow>();
  /** Ended workflows: only their final state and result, not the actors that ran them. */
  private readonly ended = new Map<string, { state: WorkflowState; result: WorkflowResult }>();
  private readonly log: Logger;
  private readonly nodeName: string;

  constructor(private readonly options: WorkflowServiceOptions) {
    super();
    this.log = options.logger.child({ component: "workflow" });
    this.nodeName = options.transport.identity.name;
    const t = options.transport;
    t.handle("workflow.state", (body) => this.localState(IdBody.parse(body).id));
    t.handle("workflow.result", (body) => this.localResult(IdBody.parse(body).id));
    t.handle("workflow.cancel", (body) => this.localCancel(IdBody.parse(body).id));
    t.handle("workflow.list", () => this.list());
  }

  /** Checks the spec against the live mesh and starts it; throws SHOAL_ERR_BAD_SPEC naming the step. */
  submit(spec: unknown): { workflow_id: string } {
    const plan = planWorkflow(spec, this.options.mesh.table.all());
    const id = `wf_${randomBytes(9).toString("base64url").toLowerCase().replace(/[^a-z0-9]/g, "").padEnd(12, "0").slice(0, 12)}`;
    const log = this.log.child({ workflowId: id, workflow: plan.spec.name });
    const notifier = new Notifier(plan.spec.notify, log);
    const actor = createActor(createWorkflowMachine(plan, this.options.runtime), { input: { workflowId: id } });
    const notice = (event: WorkflowNotice["event"], extra: Record<string, unknown> = {}): WorkflowNotice => ({
      event,
      workflow_id: id,
      name: plan.spec.name,
      at: new Date().toISOString(),
      ...extra,
    });
    actor.on("*", (ev) => {
      const { type, ...rest } = ev;
      notifier.notify(notice(type, rest));
    });
    const ended = toPromise(actor).then(() => {
      const result = resultOf(actor.getSnapshot().context);
      this.retire(id, result);
      notifier.notify(notice("workflow.finished", { status: result.status, total_time_ms: result.total_time_ms, failures: result.failures }));
      return result;
    });
    ended.catch((err: unknown) => log.error({ err }, "workflow actor failed"));
    this.owned.set(id, { id, plan, actor, ended });
    actor.subscribe({ next: () => this.emit("changed", id), error: () => this.emit("changed", id) });
    notifier.notify(notice("workflow.started", { steps: plan.instances.length, owner: this.nodeName }));
    actor.start();
    return { workflow_id: id };
  }

  /** The seed's state format, from whichever node owns the workflow. */
  async state(id: string): Promise<WorkflowState> {
    return this.here(id) ? this.localState(id) : ((await this.atOwner(id, "workflow.state")) as WorkflowState);
  }

  /** The seed's response format; SHOAL_ERR_WORKFLOW_RUNNING while it runs. */
  async result(id: string): Promise<WorkflowResult> {
    return this.here(id) ? this.localResult(id) : ((await this.atOwner(id, "workflow.result")) as WorkflowResult);
  }

  /** Stops the running steps; the workflow ends `partial` or `failed`. */
  async cancel(id: string): Promise<WorkflowState> {
    return this.here(id) ? this.localCancel(id) : ((await this.atOwner(id, "workflow.cancel")) as WorkflowState);
  }

  /** Resolves with the result once a workflow this node owns has ended. */
  wait(id: string): Promise<WorkflowResult> {
    const done = this.ended.get(id);
    if (done) return Promise.resolve(done.result);
    const wf = this.owned.get(id);
    if (!wf) return Promise.reject(new ShoalError("SHOAL_ERR_UNKNOWN_WORKFLOW", `${this.nodeName} does not own workflow ${id}`));
    return wf.ended;
  }

  /** Workflows this node owns, newest first. */
  list(): WorkflowSummary[] {
    return [...this.ended.keys(), ...this.owned.keys()].reverse().map((id) => {
      const s = this.localState(id);
      return { workflow_id: s.workflow_id, name: s.name, status: s.status, owner: s.owner, started_at: s.started_at, progress: s.progress };
    });
  }

  /** Workflows of every live node, newest first; a node that does not answer is left out. */
  async listMesh(): Promise<WorkflowSummary[]> {
    const peers = this.options.mesh.members().filter((m) => !m.self && m.status !== "down");
    const answers = await Promise.allSettled(peers.map((p) => this.options.transport.request(p.id, "workflow.list", {}, { timeoutMs: 5_000 })));
    const all = [...this.list(), ...answers.flatMap((a) => (a.status === "fulfilled" ? (a.value as WorkflowSummary[]) : []))];
    return all.sort((x, y) => y.started_at.localeCompare(x.started_at));
  }

  private here(id: string): boolean {
    return this.owned.has(id) || this.ended.has(id);
  }

  /** Keeps what an ended workflow said and lets its actors go. */
  private retire(id: string, result: WorkflowResult): void {
    this.ended.set(id, { state: this.localState(id), result });
    this.owned.delete(id);
    setTimeout(() => this.ended.delete(id), this.options.retainMs ?? 60 * 60_000).unref();
    const max = this.options.maxRetained ?? 1_000;
    for (const old of this.ended.keys()) {
      if (this.ended.size <= max) break;
      this.ended.delete(old);
    }
    this.emit("changed", id);
  }

  private require(id: string): OwnedWorkflow {
    const wf = this.owned.get(id);
    if (!wf) throw new ShoalError("SHOAL_ERR_UNKNOWN_WORKFLOW", `no workflow ${id} on ${this.nodeName}`);
    return wf;
  }

  private localState(id: string): WorkflowState {
    const done = this.ended.get(id);
    if (done) return done.state;
    const wf = this.require(id);
    const snap = wf.actor.getSnapshot();
    return stateOf(snap.context as WorkflowContext, this.nodeName, (_instance, actorId) => this.detailsOf(actorId));
  }

  private localResult(id: string): WorkflowResult {
    const done = this.ended.get(id);
    if (done) return done.result;
    const wf = this.require(id);
    const ctx = wf.actor.getSnapshot().context as WorkflowContext;
    if (ctx.endedAt === null) throw new ShoalError("SHOAL_ERR_WORKFLOW_RUNNING", `workflow ${id} is still running`);
    return resultOf(ctx);
  }

  private localCancel(id: string): WorkflowState {
    const done = this.ended.get(id);
    if (done) return done.state;
    const wf = this.require(id);
    if (wf.actor.getSnapshot().status === "active") {
      this.log.info({ workflowId: id }, "cancelling workflow");
      wf.actor.send({ type: "CANCEL" });
    }
    return this.localState(id);
  }

  /** Where the runtime put a step's actor and why, or why it still waits. */
  private detailsOf(actorId: string | null): StepDetails {
    const record = actorId ? this.options.runtime.supervisor.get(actorId) : undefined;
    const placement = !record
      ? null
      : record.decision && (record.status === "running" || record.status === "starting" || record.finished)
        ? `${record.decision.nodeName}: ${record.decision.why}`
        : record.waiting
          ? `waiting: ${record.waiting}`
          : null;
    return { placement };
  }

  /** Asks every live peer; the owner answers, the others say they do not know it. */
  private async atOwner(id: string, method: string): Promise<unknown> {
    const peers = this.options.mesh.members().filter((m) => !m.self && m.status !== "down");
    const answers = await Promise.allSettled(peers.map((p) => this.options.transport.request(p.id, method, { id }, { timeoutMs: 10_000 })));
    const found = answers.find((a) => a.status === "fulfilled");
    if (found) return (found as PromiseFulfilledResult<unknown>).value;
    const error = answers
      .map((a) => (a as PromiseRejectedResult).reason)
      .find((e) => !isShoalError(e, "SHOAL_ERR_UNKNOWN_WORKFLOW") && isShoalError(e) && e.code !== "SHOAL_ERR_NOT_CONNECTED");
    if (error) throw error;
    throw new ShoalError("SHOAL_ERR_UNKNOWN_WORKFLOW", `no node in the mesh knows workflow ${id}`);
  }
}
