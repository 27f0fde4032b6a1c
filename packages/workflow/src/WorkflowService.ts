import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Mesh } from "@shoal/mesh";
import {
  type Logger,
  ShoalError,
  type WorkflowClaim,
  WorkflowClaimSchema,
  WorkflowClaimsQuerySchema,
  type WorkflowReplica,
  type WorkflowReplicaAnswer,
  WorkflowReplicaSchema,
  type WorkflowResult,
  type WorkflowState,
  isShoalError,
} from "@shoal/protocol";
import type { Runtime } from "@shoal/runtime";
import type { Transport } from "@shoal/transport";
import { type Actor, createActor, toPromise } from "xstate";
import { z } from "zod";
import { BackupLink, type ReplicaSource } from "./BackupLink.js";
import { type StepDetails, resultOf, stateOf } from "./formats.js";
import { Notifier, type WorkflowNotice } from "./Notifier.js";
import { OwnershipClaims } from "./OwnershipClaims.js";
import { ProgressWriter } from "./ProgressWriter.js";
import { type Plan, planWorkflow, restorePlan } from "./planWorkflow.js";
import type { StoredWorkflow, WorkflowStore } from "./WorkflowStore.js";
import { type InstanceRecord, type WorkflowContext, createWorkflowMachine } from "./workflowMachine.js";

export interface WorkflowServiceOptions {
  runtime: Runtime;
  mesh: Mesh;
  transport: Transport;
  logger: Logger;
  /** Ended workflows stay readable this long... */
  retainMs?: number;
  /** ...and at most this many of them (the oldest go first). */
  maxRetained?: number;
  /**
   * Where workflows are kept across restarts; without one they live in memory only. With one,
   * each owned workflow is also copied to a backup peer, which takes it over if this node goes
   * down.
   */
  store?: WorkflowStore;
  /**
   * Step outcomes are stored at most this long after they happen, many in one transaction (a
   * commit per step would cost more than the rest of the orchestration). A crash loses at most
   * this much: those steps run again on resume. 20 ms by default.
   */
  saveIntervalMs?: number;
}

interface OwnedWorkflow {
  id: string;
  plan: Plan;
  startedAt: number;
  /** Ownership epoch: 1 when accepted here, +1 at each takeover. */
  epoch: number;
  actor: Actor<ReturnType<typeof createWorkflowMachine>>;
  ended: Promise<WorkflowResult>;
  /** Stopped here because another node owns it now at a higher epoch. */
  fenced: boolean;
}

const IdBody = z.object({ id: z.string().max(64) });

/** One row of `list()`. */
export interface WorkflowSummary {
  workflow_id: string;
  name: string;
  status: string;
  owner: string;
  started_at: string;
  progress: { done: number; total: number };
}

/**
 * The orchestrator of a node: checks and starts workflows submitted here (this node owns them),
 * keeps them in its store if it has one, and answers for any workflow in the mesh by asking its
 * owner.
 */
export class WorkflowService extends EventEmitter<{ changed: [workflowId: string] }> {
  private readonly owned = new Map<string, OwnedWorkflow>();
  /** Ended workflows: only their final state and result, not the actors that ran them. */
  private readonly ended = new Map<string, { state: WorkflowState; result: WorkflowResult }>();
  private readonly log: Logger;
  private readonly nodeName: string;
  private readonly progress: ProgressWriter | undefined;
  /** Set by `close`: workflows stop here without ending. */
  private closing = false;
  private readonly selfId: string;
  private readonly backups: BackupLink | undefined;
  private readonly claims: OwnershipClaims | undefined;
  /** Workflows taken over here from a down owner, and copies given up here for a higher epoch (stopped or dropped). */
  readonly ownershipStats = { takenOver: 0, gaveWay: 0 };

  constructor(private readonly options: WorkflowServiceOptions) {
    super();
    this.log = options.logger.child({ component: "workflow" });
    this.nodeName = options.transport.identity.name;
    this.selfId = options.transport.identity.id;
    const t = options.transport;
    t.handle("workflow.state", (body) => this.localState(IdBody.parse(body).id));
    t.handle("workflow.result", (body) => this.localResult(IdBody.parse(body).id));
    t.handle("workflow.cancel", (body) => this.localCancel(IdBody.parse(body).id));
    t.handle("workflow.list", () => this.list());
    const store = options.store;
    if (!store) return;
    const dropped = store.startedBy(this.selfId);
    if (dropped > 0) this.log.info({ dropped }, "dropped copies of other nodes' workflows kept before this start");
    this.backups = new BackupLink({ transport: t, mesh: options.mesh, logger: this.log, fenced: (claim) => this.fence(claim) });
    this.progress = new ProgressWriter({
      store,
      logger: this.log,
      intervalMs: options.saveIntervalMs ?? 20,
      recordsOf: (id) => (this.owned.get(id)?.actor.getSnapshot().context as WorkflowContext | undefined)?.instances,
      written: (id, records) => {
        const wf = this.owned.get(id);
        if (wf) this.backups?.records(this.sourceOf(wf), records);
      },
    });
    const claims = new OwnershipClaims({ transport: t, mesh: options.mesh, store, logger: this.log });
    this.claims = claims;
    t.handle("workflow.replica", (body) => this.keepReplica(WorkflowReplicaSchema.parse(body)));
    t.handle("workflow.claims", (body) => claims.among(WorkflowClaimsQuerySchema.parse(body).workflow_ids));
    t.handleCast("workflow.claimed", (body) => this.fence(WorkflowClaimSchema.parse(body)));
    options.mesh.on("down", (m) => {
      this.takeOver(m.id);
      this.backups?.peerDown(m.id, this.sources());
    });
    options.mesh.on("up", () => this.backups?.peerUp(this.sources()));
    // A node that was cut off may still run what was taken over from it: tell it as soon as there
    // is a link again (a takeover closed the old one; `up` may come by gossip before the link).
    t.on("connected", (conn) => {
      for (const claim of claims.takenOver()) claims.tell(conn.peer.id, claim);
    });
  }

  /** Checks the spec against the live mesh and starts it; throws SHOAL_ERR_BAD_SPEC naming the step. */
  submit(spec: unknown): { workflow_id: string } {
    const plan = planWorkflow(spec, this.options.mesh.table.all());
    const id = `wf_${randomBytes(9).toString("base64url").toLowerCase().replace(/[^a-z0-9]/g, "").padEnd(12, "0").slice(0, 12)}`;
    const startedAt = Date.now();
    this.options.store?.started({ id, owner: this.selfId, epoch: 1, spec: plan.spec, instances: plan.instances, startedAt });
    const wf = this.launch(id, plan, startedAt, 1);
    this.backups?.full(this.sourceOf(wf));
    return { workflow_id: id };
  }

  /**
   * After a restart: takes back what the store kept. Ended workflows are readable again (within
   * the retention); unfinished ones run again from their stored records: steps that ended keep
   * their outcome, the others run again with the same key, at the attempt they had reached. A
   * workflow that a peer took over while this node was down stays with that peer (`handedOver`).
   * Call it once the node is back in the mesh: its steps need nodes to run on, and the peers
   * must be there to say what they took over.
   */
  async resume(): Promise<{ resumed: number; ended: number; handedOver: number }> {
    const store = this.options.store;
    if (!store) return { resumed: 0, ended: 0, handedOver: 0 };
    const retainMs = this.options.retainMs ?? 60 * 60_000;
    const now = Date.now();
    let ended = 0;
    for (const wf of store.endedWorkflows()) {
      if (this.here(wf.id)) continue;
      if (now - wf.endedAt >= retainMs) {
        store.forget(wf.id);
        continue;
      }
      this.keepEnded(wf.id, wf.state, wf.result, retainMs - (now - wf.endedAt));
      ended++;
    }
    const unfinished = store.unfinished(this.selfId).filter((wf) => !this.here(wf.id));
    const claims = (await this.claims?.ask(unfinished.map((wf) => wf.id))) ?? new Map<string, WorkflowClaim>();
    let resumed = 0;
    let handedOver = 0;
    for (const wf of unfinished) {
      const claim = claims.get(wf.id);
      if (claim && claim.epoch > wf.epoch) this.dropSuperseded(claim);
      // Also gone if a peer's claim arrived on its own while the peers were asked.
      const still = store.ownership(wf.id);
      if (still?.owner !== this.selfId || still.epoch !== wf.epoch) {
        handedOver++;
        continue;
      }
      if (this.run(wf)) resumed++;
    }
    this.log.info({ resumed, ended, handedOver }, "workflows taken back from the store");
    return { resumed, ended, handedOver };
  }

  /** Runs a stored workflow on from its records, as its owner at its epoch; false if it cannot be. */
  private run(stored: StoredWorkflow): boolean {
    try {
      const wf = this.launch(stored.id, restorePlan(stored.spec, stored.instances), stored.startedAt, stored.epoch, stored.records);
      this.backups?.full(this.sourceOf(wf));
      return true;
    } catch (err) {
      this.log.error({ err, workflowId: stored.id }, "could not run a stored workflow; it stays in the store");
      return false;
    }
  }

  private launch(id: string, plan: Plan, startedAt: number, epoch: number, restored?: Record<string, InstanceRecord>): OwnedWorkflow {
    const log = this.log.child({ workflowId: id, workflow: plan.spec.name });
    const notifier = new Notifier(plan.spec.notify, log);
    const actor = createActor(createWorkflowMachine(plan, this.options.runtime), { input: { workflowId: id, startedAt, ...(restored && { restored }) } });
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
      // What a resume needs of a record changes exactly when one of these is emitted (see ProgressWriter).
      if (!this.closing && (type === "step.completed" || type === "step.failed" || type === "step.retrying")) this.progress?.changed(id, ev.instance);
    });
    const ended = toPromise(actor).then(() => {
      // Stopped by `close`, not ended: the store keeps it unfinished for the next start.
      if (this.closing) throw new ShoalError("SHOAL_ERR_DRAINING", `${this.nodeName} is stopping; workflow ${id} runs on when it starts again`);
      if (wf.fenced) throw new ShoalError("SHOAL_ERR_DRAINING", `workflow ${id} is owned by another node now`);
      const result = resultOf(actor.getSnapshot().context);
      this.retire(wf, result);
      notifier.notify(notice("workflow.finished", { status: result.status, total_time_ms: result.total_time_ms, failures: result.failures }));
      return result;
    });
    ended.catch((err: unknown) => {
      if (!isShoalError(err, "SHOAL_ERR_DRAINING")) log.error({ err }, "workflow actor failed");
    });
    this.progress?.begin(id, restored);
    const wf: OwnedWorkflow = { id, plan, startedAt, epoch, actor, ended, fenced: false };
    this.owned.set(id, wf);
    const changed = () => this.emit("changed", id);
    actor.subscribe({ next: changed, error: changed });
    if (restored) log.info({ steps: plan.instances.length, epoch }, "workflow resumed");
    else notifier.notify(notice("workflow.started", { steps: plan.instances.length, owner: this.nodeName }));
    actor.start();
    return wf;
  }

  /**
   * For a shutdown: stores what the workflows did so far and stops them here without ending them
   * (their running steps are stopped too); `resume` on the next start runs them on. Without a
   * store they are lost, as before.
   */
  close(): void {
    if (this.closing) return;
    this.progress?.flush();
    this.closing = true;
    for (const wf of this.owned.values()) wf.actor.stop();
    this.log.info({ workflows: this.owned.size, stored: this.options.store !== undefined }, "workflows stopped for shutdown");
    this.owned.clear();
  }

  /** What the backup link copies of an owned workflow. */
  private sourceOf(wf: OwnedWorkflow): ReplicaSource {
    return {
      id: wf.id,
      epoch: wf.epoch,
      spec: wf.plan.spec,
      instances: wf.plan.instances,
      startedAt: wf.startedAt,
      records: () => Object.values((wf.actor.getSnapshot().context as WorkflowContext).instances),
    };
  }

  private sources(): ReplicaSource[] {
    return [...this.owned.values()].map((wf) => this.sourceOf(wf));
  }

  /** A backup's side: keeps an owner's copy, unless that owner has been replaced (fenced). */
  private keepReplica(op: WorkflowReplica): WorkflowReplicaAnswer {
    const mine = this.owned.get(op.workflow_id);
    if (mine && mine.epoch >= op.epoch) return { fenced: (this.claims as OwnershipClaims).mine(mine.id, mine.epoch) };
    const answer = (this.options.store as WorkflowStore).replicate(op, (nodeId) => this.options.mesh.member(nodeId)?.name ?? nodeId);
    this.log.debug({ workflowId: op.workflow_id, op: op.op, owner: op.owner, epoch: op.epoch, answer: Object.keys(answer)[0] }, "kept a copy of a workflow");
    return answer;
  }

  /** The owner of workflows this node keeps copies of is down: run them here, at the next epoch. */
  private takeOver(downId: string): void {
    const store = this.options.store;
    if (!store || this.closing) return;
    for (const replica of store.unfinished(downId)) {
      if (this.here(replica.id)) continue;
      const epoch = replica.epoch + 1;
      store.claim(replica.id, this.selfId, epoch);
      const from = this.options.mesh.member(downId)?.name ?? downId;
      this.log.warn({ workflowId: replica.id, from, epoch }, "took over a workflow whose owner is down");
      if (!this.run({ ...replica, owner: this.selfId, epoch })) continue;
      this.ownershipStats.takenOver++;
      this.claims?.announce(this.claims.mine(replica.id, epoch));
    }
  }

  /** Another node owns a workflow at a higher epoch: stop the copy here, without ending it. */
  private fence(claim: WorkflowClaim): void {
    const wf = this.owned.get(claim.workflow_id);
    if (!wf) {
      this.dropSuperseded(claim);
      return;
    }
    if (wf.epoch >= claim.epoch) return;
    this.log.warn({ workflowId: wf.id, owner: claim.owner_name, epoch: claim.epoch, ourEpoch: wf.epoch }, "another node took this workflow over; stopping it here");
    wf.fenced = true;
    this.ownershipStats.gaveWay++;
    this.owned.delete(wf.id);
    this.progress?.end(wf.id);
    this.backups?.forget(wf.id);
    wf.actor.stop();
    try {
      this.options.store?.forget(wf.id);
    } catch (err) {
      this.log.warn({ err, workflowId: wf.id }, "could not drop a workflow owned elsewhere from the store");
    }
    this.emit("changed", wf.id);
  }

  /**
   * What this node still holds of a workflow owned elsewhere at a higher epoch goes: a replica
   * kept for the replaced owner (it would take over from the wrong one), or the outcome this node
   * reached itself while it was cut off (the new owner's is the one that counts).
   */
  private dropSuperseded(claim: WorkflowClaim): void {
    const store = this.options.store;
    const known = store?.ownership(claim.workflow_id);
    if (!store || !known || known.epoch >= claim.epoch) return;
    store.forget(claim.workflow_id);
    if (known.owner !== this.selfId) return; // a replica kept for the replaced owner
    this.ownershipStats.gaveWay++;
    const hadOutcome = this.ended.delete(claim.workflow_id);
    this.log.warn({ workflowId: claim.workflow_id, owner: claim.owner_name, epoch: claim.epoch, ourEpoch: known.epoch, hadOutcome }, "another node owns this workflow now; dropped it here");
    if (hadOutcome) this.emit("changed", claim.workflow_id);
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

  /** Workflows running here (this node owns them and they have not ended). */
  get running(): number {
    return this.owned.size;
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
  private retire(wf: OwnedWorkflow, result: WorkflowResult): void {
    const id = wf.id;
    const state = this.localState(id);
    this.owned.delete(id);
    this.progress?.end(id);
    this.backups?.ended(id, wf.epoch);
    try {
      this.options.store?.ended({ id, endedAt: Date.now(), state, result });
    } catch (err) {
      this.log.error({ err, workflowId: id }, "could not store the end of a workflow");
    }
    this.keepEnded(id, state, result, this.options.retainMs ?? 60 * 60_000);
    this.emit("changed", id);
  }

  /** An ended workflow stays readable for `forMs`, among the newest `maxRetained`. */
  private keepEnded(id: string, state: WorkflowState, result: WorkflowResult, forMs: number): void {
    this.ended.set(id, { state, result });
    setTimeout(() => this.forget(id), forMs).unref();
    const max = this.options.maxRetained ?? 1_000;
    for (const old of this.ended.keys()) {
      if (this.ended.size <= max) break;
      this.forget(old);
    }
  }

  private forget(id: string): void {
    if (!this.ended.delete(id)) return;
    try {
      this.options.store?.forget(id);
    } catch (err) {
      this.log.warn({ err, workflowId: id }, "could not drop an ended workflow from the store");
    }
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
