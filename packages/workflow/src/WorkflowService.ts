import { EventEmitter } from "node:events";
import type { Mesh } from "@shoal/mesh";
import {
  LIMIT_DEFAULTS,
  type Logger,
  type NodeConfig,
  QUARANTINE_AFTER_CRASHES,
  ShoalError,
  type WorkflowClaim,
  type WorkflowConflict,
  type WorkflowCopies,
  type WorkflowReplica,
  type WorkflowReplicaAnswer,
  type WorkflowResult,
  type WorkflowState,
  type WorkflowSpec,
  type WorkflowSummary,
  isShoalError,
  monotonicNow,
} from "@shoal/protocol";
import type { Runtime } from "@shoal/runtime";
import type { Transport } from "@shoal/transport";
import { type Actor, createActor, toPromise } from "xstate";
import { BackupLink, type EndedCopy, type ReplicaSource } from "./BackupLink.js";
import { CheckpointRelay, type StepCheckpoint } from "./CheckpointRelay.js";
import { EndedCopies } from "./EndedCopies.js";
import { KeptCheckpoints } from "./KeptCheckpoints.js";
import { endUnrun, storedContext } from "./endUnrun.js";
import { type StepDetails, resultOf, stateOf } from "./formats.js";
import { Notifier, type NotifierOptions, type WorkflowNotice } from "./Notifier.js";
import { OwnershipClaims } from "./OwnershipClaims.js";
import { type OwnershipView, claimRefusal, compareOwnership, replicaRefusal, supersedes, takeoverOf } from "./ownership.js";
import { ProgressWriter } from "./ProgressWriter.js";
import { type Plan, planWorkflow, restorePlan } from "./planWorkflow.js";
import { quorum } from "./quorum.js";
import { WorkflowDeadlines } from "./WorkflowDeadlines.js";
import { type LocalKnowledge, WorkflowDirectory, resumingError } from "./WorkflowDirectory.js";
import type { StoredWorkflow, WorkflowStore } from "./WorkflowStore.js";
import { newWorkflowId } from "./workflowIds.js";
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
  /** Instances one workflow may have, fanned-out ones counted (`--max-workflow-instances`, 5,000). */
  maxWorkflowInstances?: number;
  /** Workflows this node runs at once as their owner; `submit` refuses more (`--max-workflows`, 1,000). */
  maxWorkflows?: number;
  /**
   * A resumed workflow that has run this long without its node crashing (or that stored an
   * outcome of a step first) no longer counts as a resume that crashed; 5 s by default.
   */
  survivalMs?: number;
  /** For every workflow's webhook: the node's egress rules and the signing secret (`--webhook-secret-file`). */
  webhooks?: NotifierOptions;
  /**
   * When `submit` resolves (the 202): `replicated` (the default) once the workflow is synced here
   * and on its backups that are up; `local` once it is synced here (`--ack`).
   */
  ack?: NodeConfig["ack"];
  /** Backups that keep a copy of each owned workflow (`--replicas`, 1). */
  replicas?: number;
  /**
   * A running agent step's latest checkpoint goes to the workflow's backups at most this often
   * (500 ms by default): what a takeover resumes it from.
   */
  checkpointIntervalMs?: number;
}

/** How long a refused submit should wait before trying again. */
const RETRY_AFTER_MS = 1_000;
/** How often an end not yet kept by every peer holding a copy is sent to them again. */
const PUBLISH_RETRY_MS = 500;
/** How long holders that are up but do not answer may keep an outcome from being shown, on a majority side. */
const PUBLISH_GIVE_UP_MS = 10_000;
/**
 * After regaining a majority, owners still down this much later are taken over, and holders of
 * a copy still down this much later no longer hold an end back (a few heartbeats: time for stale
 * down marks to be refuted).
 */
const TAKEOVER_AFTER_HEAL_MS = 3_000;

/**
 * How long a member must be up, on a link of its own to this node, before it counts in the
 * membership a majority is counted in. A peer heard of only by gossip, or one that joins and
 * vanishes (a crashed start, a hostile client passing the handshake), never counts: otherwise a
 * burst of such members going down at once would leave the real nodes a minority, paused for good.
 */
const QUORUM_SETTLE_MS = 3_000;

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
  /** Resumes of it begun and not yet survived: 0 when accepted here, or once it has run a while. */
  resumes: number;
  /** While a resume of it is on trial: resolves once it survived (or stopped here). */
  trial: { timer: NodeJS.Timeout; done(): void } | undefined;
  survived: Promise<void>;
}

/**
 * A stored workflow suspected of crashing this node (its last resume did not survive), waiting
 * for its turn to be resumed alone. It is owned here meanwhile: counted, shown, backed up.
 */
interface WaitingWorkflow {
  stored: StoredWorkflow;
  ended: Promise<WorkflowResult>;
  settle(outcome: Promise<WorkflowResult>): void;
}

/**
 * The orchestrator of a node: checks and starts workflows submitted here (this node owns them),
 * keeps them in its store if it has one, and answers for any workflow in the mesh by asking its
 * owner.
 */
export class WorkflowService extends EventEmitter<{ changed: [workflowId: string] }> {
  private readonly owned = new Map<string, OwnedWorkflow>();
  private readonly waiting = new Map<string, WaitingWorkflow>();
  /** Suspects are resumed one after the other, in this chain. */
  private trials: Promise<void> = Promise.resolve();
  /** Ended here, not shown yet: the peers holding copies are being told (see `retire`). */
  private readonly ending = new Map<string, EndedCopy & { done: Promise<WorkflowResult> }>();
  /** Ended workflows: only their final state and result, not the actors that ran them. */
  private readonly ended = new Map<string, { state: WorkflowState; result: WorkflowResult }>();
  private readonly log: Logger;
  private readonly nodeName: string;
  private readonly progress: ProgressWriter | undefined;
  private readonly checkpoints: CheckpointRelay | undefined;
  /** Set by `close`: workflows stop here without ending. */
  private closing = false;
  private readonly selfId: string;
  private readonly backups: BackupLink | undefined;
  private readonly claims: OwnershipClaims | undefined;
  /** Workflows taken over here from a down owner, and copies given up here for a higher epoch (stopped or dropped). */
  readonly ownershipStats = { takenOver: 0, gaveWay: 0 };
  /** The deadlines of the copies kept here, on this node's clock; what a run starting here has left. */
  private readonly deadlines = new WorkflowDeadlines();
  /** When the agent checkpoints of the copies kept here arrived: a takeover ages their timers. */
  private readonly keptCheckpoints = new KeptCheckpoints();
  /** Ended workflows of other owners kept here as their backup. */
  private readonly copies: EndedCopies | undefined;
  /** Of the running copies kept here: their owner's backups in takeover order, as its latest copy said. */
  private readonly copyBackups = new Map<string, string[]>();
  /** Who answers for the workflows this node does not hold. */
  private readonly directory: WorkflowDirectory;
  /** Set once `resume` has taken back the unfinished workflows of the store. */
  private resumed = false;
  /** Ended workflows of this node's own that its store gave back at the start. */
  private endedAtStart = 0;
  /** Set once the copies of a lost store were asked for. */
  private restored = false;
  /** The membership a majority is counted in (quorum.ts), and whether this node sees one. */
  private membership = new Set<string>();
  private minority = false;
  /**
   * When this node last regained a majority (monotonic): its down marks are stale for a while
   * after a heal. A node that never lost one has nothing of the kind to wait for.
   */
  private majoritySince = Number.NEGATIVE_INFINITY;
  /** Since when each member not yet counted has been up on a link to this node. */
  private readonly upSince = new Map<string, number>();
  private quorumTimer: NodeJS.Timeout | undefined;
  /** Outcomes a replaced owner reported for workflows still running here: they go into the end state. */
  private readonly conflicts = new Map<string, WorkflowConflict[]>();
  /** Reads of an ending workflow waiting on one ask of the peers (`checkTakenOver`). */
  private readonly takeoverChecks = new Map<string, Promise<void>>();
  /** Set while takeovers wait for the down marks of a heal to settle (`deferTakeovers`). */
  private takeoverTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: WorkflowServiceOptions) {
    super();
    this.log = options.logger.child({ component: "workflow" });
    this.nodeName = options.transport.identity.name;
    this.selfId = options.transport.identity.id;
    this.directory = new WorkflowDirectory({
      selfId: this.selfId,
      nodeName: this.nodeName,
      mesh: options.mesh,
      transport: options.transport,
      local: {
        owns: (id) => this.here(id),
        copyOwner: (id) => this.copies?.get(id)?.owner,
        settled: () => this.settled(),
        checkTakenOver: (id) => this.checkTakenOver(id),
        knowledgeOf: (id) => this.knowledgeOf(id),
        state: (id) => this.localState(id),
        result: (id) => this.localResult(id),
        cancel: (id) => this.localCancel(id),
        list: () => this.list(),
      },
    });
    const t = options.transport;
    this.countQuorum();
    options.mesh.on("changes", () => this.countQuorum());
    // A member that settled without a further change is counted on the next tick of this.
    this.quorumTimer = setInterval(() => this.countQuorum(), QUORUM_SETTLE_MS).unref();
    const store = options.store;
    if (!store) return;
    const dropped = store.startedBy(this.selfId);
    if (dropped > 0) this.log.info({ dropped }, "dropped copies of other nodes' workflows kept before this start");
    this.backups = new BackupLink({ transport: t, mesh: options.mesh, logger: this.log, replicas: options.replicas, fenced: (claim) => this.fence(claim) });
    this.copies = new EndedCopies({ store, logger: this.log, retainMs: this.retainMs, maxRetained: options.maxRetained ?? 1_000 });
    // Readable at once: they need no peer, unlike what `resume` takes back.
    const copies = this.copies.load(store.endedWorkflows().filter((wf) => wf.owner !== this.selfId));
    if (copies > 0) this.log.info({ copies }, "ended workflows of other owners kept here as their backup");
    this.endedAtStart = this.takeBackEnded();
    this.progress = new ProgressWriter({
      store,
      logger: this.log,
      intervalMs: options.saveIntervalMs ?? 20,
      recordsOf: (id) => (this.owned.get(id)?.actor.getSnapshot().context as WorkflowContext | undefined)?.instances,
      written: (id, records) => {
        const wf = this.owned.get(id);
        if (!wf) return;
        // A step's outcome was stored: the resume survived (and its backup hears the cleared count with the records).
        if (this.endTrial(wf)) this.clearResumes(wf, false);
        this.backups?.records(this.sourceOf(wf), records);
      },
    });
    const claims = new OwnershipClaims({ transport: t, mesh: options.mesh, store, logger: this.log });
    this.claims = claims;
    this.checkpoints = new CheckpointRelay({
      subscribe: (listener) => options.runtime.onPlacement(listener),
      logger: this.log,
      intervalMs: options.checkpointIntervalMs ?? 500,
      owns: (id) => this.owned.has(id),
      copy: (id, steps) => this.copyCheckpoints(id, steps),
    });
    // What the sender rules of replicas and claims read: who owns what here, who holds its copy.
    const view: OwnershipView = {
      selfId: this.selfId,
      ownership: (id) => store.ownership(id),
      holdsCopy: (id, nodeId) => this.backups?.holdsCopy(id, nodeId) ?? false,
      isUp: (nodeId) => options.mesh.member(nodeId)?.status === "up",
    };
    t.handle("workflow.replica", (op) => this.keepReplica(op), (op, from) => replicaRefusal(view, op, from));
    t.handle("workflow.claims", ({ workflow_ids }) => claims.among(workflow_ids));
    t.handle("workflow.copies", (_query, from) => this.copiesFor(from.id));
    t.handleCast("workflow.claimed", (claim) => this.fence(claim), (claim, from) => claimRefusal(view, claim, from));
    options.mesh.on("down", (m) => {
      // Counted now, not at the end of the turn: whether this side may take over depends on it.
      // Only a member of the counted membership changes the count; a thousand invented members
      // going down at once must not cost a thousand counts of the whole table.
      if (this.membership.has(m.id)) this.countQuorum();
      this.takeOver(m.id);
      this.backups?.peerDown(m.id, this.sources());
    });
    options.mesh.on("up", () => this.backups?.peerUp(this.sources()));
    // A node that was cut off may still run what was taken over from it: tell it as soon as there
    // is a link again (a takeover closed the old one; `up` may come by gossip before the link).
    t.on("connected", (conn) => {
      this.backups?.connected(conn.peer.id);
      for (const claim of claims.takenOver()) claims.tell(conn.peer.id, claim);
      // A copy sent at `up` fails when that came by gossip before the link: this is the next chance.
      this.backups?.peerUp(this.sources());
    });
  }

  /**
   * Checks the spec against the live mesh and starts it; throws SHOAL_ERR_BAD_SPEC naming the
   * step, SHOAL_ERR_TOO_MANY_INSTANCES / SHOAL_ERR_SPEC_TOO_LARGE before anything is expanded
   * or stored, SHOAL_ERR_OVERLOADED (with a retry hint) when this node already runs its maximum.
   * Resolves once the workflow is stored and synced (what a 202 means): here, and with `ack`
   * `replicated` on each of its backups that is up (none up: here only, and its state says
   * `copies: 0`). The copies are sent while the local sync runs. SHOAL_ERR_STORE_UNAVAILABLE
   * (503, retry hint) when the store cannot be written, and then it does not run (its backups
   * are told to let their copies go).
   */
  async submit(spec: unknown): Promise<{ workflow_id: string }> {
    const max = this.options.maxWorkflows ?? LIMIT_DEFAULTS["max-workflows"];
    if (this.running >= max) {
      throw new ShoalError("SHOAL_ERR_OVERLOADED", `${this.nodeName} already runs ${this.running} workflows, its maximum (--max-workflows ${max}); try again later`, {
        retryAfterMs: RETRY_AFTER_MS,
      });
    }
    const plan = planWorkflow(spec, this.options.mesh.table.all(), { maxInstances: this.options.maxWorkflowInstances ?? LIMIT_DEFAULTS["max-workflow-instances"] });
    const id = newWorkflowId(this.selfId);
    const startedAt = Date.now();
    const stored = this.options.store?.started({ id, owner: this.selfId, epoch: 1, spec: plan.spec, instances: plan.instances, startedAt });
    const copied = this.backups?.full({
      id,
      epoch: 1,
      spec: plan.spec,
      instances: plan.instances,
      startedAt,
      records: () => [],
      resumes: () => 0,
      deadlineLeftMs: () => plan.spec.deadline_ms,
    });
    try {
      await stored;
    } catch (err) {
      // Not accepted: the backups let their copies go.
      void this.backups?.ended(id, 1);
      throw err;
    }
    this.launch(id, plan, startedAt, 1);
    if ((this.options.ack ?? "replicated") === "replicated") await copied;
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
  async resume(): Promise<{ resumed: number; ended: number; handedOver: number; quarantined: number }> {
    const store = this.options.store;
    if (!store) {
      this.resumed = true;
      return { resumed: 0, ended: 0, handedOver: 0, quarantined: 0 };
    }
    if (store.movedAside !== undefined && !this.restored) await this.restoreFromPeers();
    const ended = this.endedAtStart + this.takeBackEnded();
    this.endedAtStart = 0;
    const unfinished = store.unfinished(this.selfId).filter((wf) => !this.here(wf.id));
    // Ended here but not yet shown when this node stopped: a peer may have taken them over since.
    const unshown = store.endedWorkflows().filter((wf) => wf.owner === this.selfId && wf.state.ending !== undefined && !this.here(wf.id));
    const claims = (await this.claims?.ask([...unfinished, ...unshown].map((wf) => wf.id))) ?? new Map<string, WorkflowClaim>();
    let handedOver = 0;
    for (const wf of unshown) {
      const claim = claims.get(wf.id);
      if (claim && supersedes(claim, wf)) this.dropSuperseded(claim);
      const still = store.ownership(wf.id);
      if (still?.owner !== this.selfId || still.epoch !== wf.epoch || this.here(wf.id)) {
        handedOver++;
        continue;
      }
      const { ending: _, ...state } = wf.state;
      const final: EndedCopy = { endedAt: wf.endedAt, state, result: wf.result };
      const done = this.publishEnd(wf.id, wf.epoch, final).then(() => this.showEnd(wf.id, final));
      done.catch((err: unknown) => {
        if (!isShoalError(err, "SHOAL_ERR_DRAINING")) this.log.error({ err, workflowId: wf.id }, "could not show the end of a workflow");
      });
      this.ending.set(wf.id, { ...final, done });
    }
    const mine: StoredWorkflow[] = [];
    for (const wf of unfinished) {
      // Submitted while the peers were asked (its sync ended after the store was read): it runs already.
      if (this.here(wf.id)) continue;
      const claim = claims.get(wf.id);
      if (claim && supersedes(claim, wf)) this.dropSuperseded(claim);
      // Also gone if a peer's claim arrived on its own while the peers were asked.
      const still = store.ownership(wf.id);
      if (still?.owner !== this.selfId || still.epoch !== wf.epoch) {
        handedOver++;
        continue;
      }
      mine.push(wf);
    }
    const { taken, quarantined, waiting } = this.relaunch(mine);
    this.resumed = true;
    const resumed = taken.length - quarantined;
    this.log.info({ resumed, ended, handedOver, quarantined, waiting }, "workflows taken back from the store");
    return { resumed, ended, handedOver, quarantined };
  }

  /**
   * Ended workflows of the store, readable again (within the retention) from the start: they
   * need no peer to be final, unlike the unfinished ones `resume` waits for. Returns how many.
   */
  private takeBackEnded(): number {
    const store = this.options.store;
    if (!store) return 0;
    const retainMs = this.retainMs;
    const now = Date.now(); // wall time: ended_at is stored across restarts
    let ended = 0;
    for (const wf of store.endedWorkflows()) {
      if (wf.owner !== this.selfId || this.here(wf.id) || wf.state.ending !== undefined) continue;
      if (now - wf.endedAt >= retainMs) {
        store.forget(wf.id);
        continue;
      }
      this.keepEnded(wf.id, wf.state, wf.result, retainMs - (now - wf.endedAt));
      ended++;
    }
    return ended;
  }

  /**
   * This node's store was moved aside as unreadable: what its peers keep of its workflows comes
   * back into the new one (the newest epoch of each), ended ones readable again, running ones
   * resumed as after any restart. Those a peer took over are that peer's, and not among them.
   */
  private async restoreFromPeers(): Promise<void> {
    this.restored = true;
    const store = this.options.store as WorkflowStore;
    const peers = this.options.mesh.members().filter((m) => !m.self && m.status === "up");
    const answers = await Promise.allSettled(peers.map((p) => this.options.transport.request(p.id, "workflow.copies", {}, { timeoutMs: 10_000 })));
    const ended = new Map<string, WorkflowCopies["ended"][number]>();
    const running = new Map<string, WorkflowCopies["running"][number]>();
    for (const a of answers) {
      if (a.status !== "fulfilled") continue;
      for (const e of a.value.ended) if ((ended.get(e.workflow_id)?.epoch ?? 0) < e.epoch) ended.set(e.workflow_id, e);
      for (const r of a.value.running) if ((running.get(r.workflow_id)?.epoch ?? 0) < r.epoch && !ended.has(r.workflow_id)) running.set(r.workflow_id, r);
    }
    const owner = this.selfId;
    let failed = 0;
    const keep = (op: WorkflowReplica) => {
      try {
        store.replicate(op, (nodeId) => this.options.mesh.member(nodeId)?.name ?? nodeId);
      } catch (err) {
        failed++;
        this.log.error({ err, workflowId: op.workflow_id }, "could not store a workflow restored from a peer's copy");
      }
    };
    for (const e of ended.values()) keep({ op: "ended", workflow_id: e.workflow_id, owner, epoch: e.epoch, ended_at: e.ended_at, state: e.state, result: e.result });
    for (const r of running.values()) {
      if (ended.has(r.workflow_id)) continue;
      this.deadlines.heard(r.workflow_id, r.deadline_left_ms);
      keep({ ...r, owner });
    }
    this.log.warn(
      { ended: ended.size, running: running.size, failed, peers: peers.length, answered: answers.filter((a) => a.status === "fulfilled").length },
      "the workflow store was moved aside: restored the workflows this node owns from the copies its peers keep",
    );
  }

  /** `workflow.copies`: what this node keeps of `owner`'s workflows, for an owner that lost its store. */
  private copiesFor(owner: string): WorkflowCopies {
    const store = this.options.store as WorkflowStore;
    const { ended, running } = store.copiesOf(owner);
    return {
      ended: ended.map((c) => ({ workflow_id: c.id, epoch: c.epoch, ended_at: c.endedAt, state: c.state, result: c.result })),
      running: running.map((wf) => {
        const left = this.deadlines.leftFor(wf.id, (wf.spec as WorkflowSpec).deadline_ms, wf.startedAt);
        return {
          op: "started" as const,
          workflow_id: wf.id,
          owner: wf.owner,
          epoch: wf.epoch,
          spec: wf.spec,
          instances: wf.instances,
          started_at: wf.startedAt,
          records: Object.values(wf.records),
          resumes: wf.resumes,
          ...(left !== undefined && { deadline_left_ms: left }),
        };
      }),
    };
  }

  /**
   * Runs stored workflows on here as their owner (after a restart, or taken over), each counted
   * in the store as a resume begun before it is restored. One whose last
   * QUARANTINE_AFTER_CRASHES resumes all crashed the node is ended instead (quarantined). Those
   * whose last resume crashed (suspects) are resumed one at a time, each once the one before it
   * (and, first, all the others) survived: then a second crash is charged to the workflow that
   * caused it, not to every workflow that happened to be resumed with it. Returns the ids now
   * owned here: launched, waiting for their turn, or quarantined.
   */
  private relaunch(list: StoredWorkflow[]): { taken: string[]; quarantined: number; waiting: number } {
    const store = this.options.store as WorkflowStore;
    const taken: string[] = [];
    const fresh: StoredWorkflow[] = [];
    const suspects: StoredWorkflow[] = [];
    let quarantined = 0;
    for (const wf of list) {
      if (wf.resumes < QUARANTINE_AFTER_CRASHES) (wf.resumes === 0 ? fresh : suspects).push(wf);
      else if (this.quarantine(wf)) {
        quarantined++;
        taken.push(wf.id);
      }
    }
    store.resumesBegun(fresh.map((wf) => wf.id));
    const launched: OwnedWorkflow[] = [];
    for (const stored of fresh) {
      const wf = this.run({ ...stored, resumes: stored.resumes + 1 });
      if (!wf) continue;
      launched.push(wf);
      taken.push(wf.id);
    }
    for (const stored of suspects) {
      this.holdSuspect(stored);
      taken.push(stored.id);
    }
    if (suspects.length > 0) {
      this.trials = this.trials.then(() => this.inTurn(launched, suspects)).catch((err: unknown) => this.log.error({ err }, "could not resume the suspected workflows"));
    }
    return { taken, quarantined, waiting: suspects.length };
  }

  /** Keeps a suspect owned here until its turn comes. */
  private holdSuspect(stored: StoredWorkflow): void {
    let settle!: (outcome: Promise<WorkflowResult>) => void;
    const ended = new Promise<WorkflowResult>((resolve) => {
      settle = resolve;
    });
    ended.catch(() => {});
    this.waiting.set(stored.id, { stored, ended, settle });
    void this.backups?.full(this.sourceOfStored(stored));
    this.log.warn({ workflowId: stored.id, resumes: stored.resumes }, "workflow's last resume crashed this node: it is resumed alone, once the others have survived theirs");
  }

  private async inTurn(before: OwnedWorkflow[], suspects: StoredWorkflow[]): Promise<void> {
    await Promise.all(before.map((wf) => wf.survived));
    const store = this.options.store as WorkflowStore;
    for (const stored of suspects) {
      const waiting = this.waiting.get(stored.id);
      if (this.closing || !waiting) continue; // stopping, or cancelled or owned elsewhere meanwhile
      this.waiting.delete(stored.id);
      store.resumesBegun([stored.id]);
      const wf = this.run({ ...stored, resumes: stored.resumes + 1 });
      if (!wf) {
        waiting.settle(Promise.reject(new ShoalError("SHOAL_ERR_STORE", `workflow ${stored.id} could not be resumed`)));
        continue;
      }
      waiting.settle(wf.ended);
      await wf.survived;
    }
  }

  /** Ends a stored workflow whose resumes kept crashing the node, without running it: failed, SHOAL_ERR_QUARANTINED. */
  private quarantine(stored: StoredWorkflow): boolean {
    const message = `workflow ${stored.id} crashed ${this.nodeName} each of the ${stored.resumes} times it was resumed; it is not run again`;
    this.log.error({ workflowId: stored.id, resumes: stored.resumes }, "workflow quarantined: its resumes crashed the node");
    return this.endStored(stored, { code: "SHOAL_ERR_QUARANTINED", message }, true);
  }

  /** Ends a stored workflow that is not running here, as `endUnrun` says; false (logged) if it cannot be. */
  private endStored(stored: StoredWorkflow, error: { code: string; message: string }, failed: boolean): boolean {
    try {
      const plan = restorePlan(stored.spec, stored.instances);
      const { state, result } = endUnrun(storedContext(stored, plan), this.nodeName, error, { failed });
      const endedAt = Date.now();
      this.options.store?.ended({ id: stored.id, endedAt, state, result });
      void this.backups?.ended(stored.id, stored.epoch, { endedAt, state, result });
      this.keepEnded(stored.id, state, result, this.retainMs);
      new Notifier(plan.spec.notify, this.log.child({ workflowId: stored.id, workflow: plan.spec.name }), this.options.webhooks).notify({
        event: "workflow.finished",
        workflow_id: stored.id,
        name: plan.spec.name,
        at: new Date(endedAt).toISOString(),
        status: result.status,
        total_time_ms: result.total_time_ms,
        failures: result.failures,
      });
      this.emit("changed", stored.id);
      return true;
    } catch (err) {
      this.log.error({ err, workflowId: stored.id }, "could not end a stored workflow; it stays in the store");
      return false;
    }
  }

  /** Runs a stored workflow on from its records, as its owner at its epoch; undefined if it cannot be. */
  private run(stored: StoredWorkflow): OwnedWorkflow | undefined {
    try {
      const wf = this.launch(stored.id, restorePlan(stored.spec, stored.instances), stored.startedAt, stored.epoch, stored.records, stored.resumes);
      void this.backups?.full(this.sourceOf(wf));
      return wf;
    } catch (err) {
      this.log.error({ err, workflowId: stored.id }, "could not run a stored workflow; it stays in the store");
      return undefined;
    }
  }

  private launch(id: string, plan: Plan, startedAt: number, epoch: number, restored?: Record<string, InstanceRecord>, resumes = 0): OwnedWorkflow {
    const log = this.log.child({ workflowId: id, workflow: plan.spec.name });
    const notifier = new Notifier(plan.spec.notify, log, this.options.webhooks);
    const deadlineLeftMs = this.deadlines.leftFor(id, plan.spec.deadline_ms, startedAt);
    this.deadlines.forget(id); // its context holds the deadline from here on
    const actor = createActor(createWorkflowMachine(plan, this.options.runtime), {
      input: { workflowId: id, startedAt, deadlineLeftMs, paused: this.minority, ...(restored && { restored }) },
    });
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
    const ended = toPromise(actor).then(async () => {
      // Stopped by `close`, not ended: the store keeps it unfinished for the next start.
      if (this.closing) throw new ShoalError("SHOAL_ERR_DRAINING", `${this.nodeName} is stopping; workflow ${id} runs on when it starts again`);
      if (wf.fenced) throw new ShoalError("SHOAL_ERR_DRAINING", `workflow ${id} is owned by another node now`);
      const result = resultOf(actor.getSnapshot().context);
      await this.retire(wf, result);
      notifier.notify(notice("workflow.finished", { status: result.status, total_time_ms: result.total_time_ms, failures: result.failures }));
      return result;
    });
    ended.catch((err: unknown) => {
      if (!isShoalError(err, "SHOAL_ERR_DRAINING")) log.error({ err }, "workflow actor failed");
    });
    this.progress?.begin(id, restored);
    let survived = Promise.resolve();
    let trial: OwnedWorkflow["trial"];
    if (resumes > 0) {
      survived = new Promise<void>((done) => {
        // Unref'd: a trial never keeps a stopping process alive.
        trial = { timer: setTimeout(() => this.endTrial(wf) && this.clearResumes(wf, true), this.options.survivalMs ?? 5_000).unref(), done };
      });
    }
    const wf: OwnedWorkflow = { id, plan, startedAt, epoch, actor, ended, fenced: false, resumes, trial, survived };
    this.owned.set(id, wf);
    const changed = () => this.emit("changed", id);
    actor.subscribe({ next: changed, error: changed });
    if (restored) log.info({ steps: plan.instances.length, epoch, resumes }, "workflow resumed");
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
    this.checkpoints?.close();
    clearInterval(this.quorumTimer);
    clearTimeout(this.takeoverTimer);
    this.closing = true;
    for (const wf of this.owned.values()) {
      // A clean stop: whatever crashed the node before, it was not this resume.
      if (this.endTrial(wf)) this.clearResumes(wf, true);
      wf.actor.stop();
    }
    const stopping = new ShoalError("SHOAL_ERR_DRAINING", `${this.nodeName} is stopping; the workflow runs on when it starts again`);
    for (const w of this.waiting.values()) w.settle(Promise.reject(stopping));
    this.log.info({ workflows: this.owned.size + this.waiting.size, stored: this.options.store !== undefined }, "workflows stopped for shutdown");
    this.owned.clear();
    this.waiting.clear();
  }

  /** Ends a workflow's trial, if it is on one; true if it was. */
  private endTrial(wf: OwnedWorkflow): boolean {
    const trial = wf.trial;
    if (!trial) return false;
    wf.trial = undefined;
    clearTimeout(trial.timer);
    trial.done();
    return true;
  }

  /** The workflow survived its resume: its count goes back to 0, in the store and (unless a write on its way says so) at its backup. */
  private clearResumes(wf: OwnedWorkflow, tellBackup: boolean): void {
    this.log.info({ workflowId: wf.id, resumes: wf.resumes }, "resumed workflow survived");
    wf.resumes = 0;
    try {
      this.options.store?.resumeSurvived(wf.id);
    } catch (err) {
      this.log.warn({ err, workflowId: wf.id }, "could not clear a workflow's resume count");
    }
    if (tellBackup) this.backups?.records(this.sourceOf(wf), []);
  }

  /** Agent checkpoints into the workflow's records, and those records to its backups. */
  private copyCheckpoints(id: string, steps: StepCheckpoint[]): void {
    const wf = this.owned.get(id);
    if (!wf || !this.backups) return;
    for (const step of steps) wf.actor.send({ type: "step.checkpoint", ...step });
    const records = (wf.actor.getSnapshot().context as WorkflowContext).instances;
    const taken = steps.flatMap((step) => {
      const rec = records[step.instance];
      return rec && rec.checkpoint === step.checkpoint ? [rec] : [];
    });
    if (taken.length > 0) this.backups.records(this.sourceOf(wf), taken);
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
      resumes: () => wf.resumes,
      deadlineLeftMs: () => {
        const at = (wf.actor.getSnapshot().context as WorkflowContext).deadlineAt;
        return at === null ? undefined : Math.max(0, Math.round(at - monotonicNow()));
      },
    };
  }

  /** What the backup link copies of a workflow waiting for its turn: what the store has. */
  private sourceOfStored(stored: StoredWorkflow): ReplicaSource {
    return {
      ...stored,
      records: () => Object.values(stored.records),
      resumes: () => stored.resumes,
      // The store holds the spec as it was checked when the workflow was accepted.
      deadlineLeftMs: () => this.deadlines.leftFor(stored.id, (stored.spec as WorkflowSpec).deadline_ms, stored.startedAt),
    };
  }

  private sources(): ReplicaSource[] {
    return [...[...this.owned.values()].map((wf) => this.sourceOf(wf)), ...[...this.waiting.values()].map((w) => this.sourceOfStored(w.stored))];
  }

  /**
   * A backup's side: keeps an owner's copy, unless that owner has been replaced (fenced). A whole
   * copy is answered once it is synced here: the owner's replicated 202 waits for that answer.
   */
  private async keepReplica(op: WorkflowReplica): Promise<WorkflowReplicaAnswer> {
    const conflict = this.noteConflict(op);
    if (conflict) return conflict;
    const mine = this.owned.get(op.workflow_id);
    if (mine && !supersedes(op, { owner: this.selfId, epoch: mine.epoch })) return { fenced: (this.claims as OwnershipClaims).mine(mine.id, mine.epoch) };
    const store = this.options.store as WorkflowStore;
    const answer = store.replicate(op, (nodeId) => this.options.mesh.member(nodeId)?.name ?? nodeId);
    const id = op.workflow_id;
    if ("stored" in answer && op.op !== "ended" && op.backups) this.copyBackups.set(id, op.backups);
    if ("stored" in answer && op.op !== "ended") this.keptCheckpoints.heard(id, op.records);
    if ("stored" in answer && op.op === "started") this.deadlines.heard(id, op.deadline_left_ms);
    else if (op.op === "ended") {
      this.deadlines.forget(id);
      this.keptCheckpoints.forget(id);
      this.copyBackups.delete(id);
      if ("stored" in answer && op.state && op.result) this.copies?.keep({ id, owner: op.owner, epoch: op.epoch, endedAt: op.ended_at ?? Date.now(), state: op.state, result: op.result });
      else this.copies?.forget(id);
    }
    const checkpoints = op.op === "ended" ? [] : op.records.flatMap((r) => (r.checkpoint ? [`${r.id}@${r.checkpoint.seq}`] : []));
    this.log.debug({ workflowId: id, op: op.op, owner: op.owner, epoch: op.epoch, answer: Object.keys(answer)[0], ...(checkpoints.length > 0 && { checkpoints }) }, "kept a copy of a workflow");
    if ("stored" in answer && op.op === "started") await store.synced();
    return answer;
  }

  /**
   * A replaced owner's end of a workflow owned here at a higher epoch (it ended it while cut off
   * and may have told a client): recorded in the state as a conflict when its outcome differs,
   * the owner's own outcome unchanged; answered `fenced`. Undefined for any other replica.
   */
  private noteConflict(op: WorkflowReplica): WorkflowReplicaAnswer | undefined {
    if (op.op !== "ended" || !op.state || !op.result) return undefined;
    const id = op.workflow_id;
    const own = this.options.store?.ownership(id);
    const done = this.ended.get(id);
    if (!own || own.owner !== this.selfId || compareOwnership(own, op) !== "stale" || (!done && !this.owned.has(id))) return undefined;
    const fenced = { fenced: (this.claims as OwnershipClaims).mine(id, own.epoch) };
    if (done && JSON.stringify(done.result.result) === JSON.stringify(op.result.result) && done.result.status === op.result.status) return fenced;
    const entry: WorkflowConflict = { owner: op.state.owner, epoch: op.epoch, status: op.result.status, ended_at: op.state.ended_at, result: op.result.result };
    this.log.warn({ workflowId: id, from: op.state.owner, epoch: op.epoch, theirs: op.result.status, ours: done?.result.status ?? "running" }, "a replaced owner had ended this workflow with another outcome: recorded as a conflict");
    if (!done) {
      this.conflicts.set(id, [...(this.conflicts.get(id) ?? []), entry].slice(-100));
    } else {
      const state = { ...done.state, conflicts: [...(done.state.conflicts ?? []), entry].slice(-100) };
      this.ended.set(id, { state, result: done.result });
      try {
        this.options.store?.ended({ id, endedAt: Date.parse(state.ended_at ?? "") || Date.now(), state, result: done.result });
      } catch (err) {
        this.log.warn({ err, workflowId: id }, "could not store a conflict of outcomes");
      }
    }
    this.emit("changed", id);
    return fenced;
  }

  /**
   * A node went down: the running copies kept here whose owner is down are run here, at the next
   * epoch, by the first of their backups (in the order the owner's copy gave) that is not down:
   * this node, unless one before it is still there. So the down node may be an owner, or a
   * backup before this one in some copy's order.
   */
  private takeOver(downId: string): void {
    const store = this.options.store;
    // On the smaller side of a split the owner may well be running it: the majority's backup takes over.
    if (!store || this.closing || this.minority) return;
    const isDown = (nodeId: string) => nodeId === downId || this.options.mesh.member(nodeId)?.status === "down";
    const view = { minority: this.minority, settled: this.settled(), isDown };
    if (!view.settled) {
      this.deferTakeovers();
      return;
    }
    try {
      const claimed: StoredWorkflow[] = [];
      const replicas = store
        .copyOwners(this.selfId)
        .filter(isDown)
        .flatMap((owner) => store.unfinished(owner));
      for (const replica of replicas) {
        if (this.here(replica.id)) continue;
        const takeover = takeoverOf({ owner: replica.owner, epoch: replica.epoch, backups: this.copyBackups.get(replica.id) ?? [] }, this.selfId, view);
        if (takeover === undefined || takeover === "defer") continue;
        this.copyBackups.delete(replica.id);
        const { epoch } = takeover;
        store.claim(replica.id, this.selfId, epoch);
        const from = this.options.mesh.member(replica.owner)?.name ?? replica.owner;
        this.log.warn({ workflowId: replica.id, from, epoch, resumes: replica.resumes }, "took over a workflow whose owner is down");
        claimed.push({ ...replica, owner: this.selfId, epoch, records: this.keptCheckpoints.takeOver(replica.id, replica.records) });
      }
      const epochs = new Map(claimed.map((wf) => [wf.id, wf.epoch]));
      for (const id of this.relaunch(claimed).taken) {
        this.ownershipStats.takenOver++;
        this.claims?.announce(this.claims.mine(id, epochs.get(id) as number));
      }
    } catch (err) {
      // The store failed: the copies stay as they are; the owner's restart runs them on.
      this.log.error({ err, from: downId }, "could not take over the workflows of a down owner");
    }
  }

  /**
   * Counts the mesh as quorum.ts says after each batch of membership changes. Losing the majority
   * pauses every workflow owned here; regaining it first asks the peers who owns them now (a
   * node on the other side may have taken some over: those give way, not one more step runs
   * here), then resumes the rest and takes over what down owners left meanwhile.
   */
  private countQuorum(): void {
    const now = monotonicNow();
    const members = this.options.mesh.members();
    const present = new Set(members.map((m) => m.id));
    for (const id of this.upSince.keys()) if (!present.has(id)) this.upSince.delete(id);
    const counted = members.filter((m) => {
      if (this.membership.has(m.id)) return true;
      if (m.status !== "up" || this.options.transport.connection(m.id)?.isOpen !== true) {
        this.upSince.delete(m.id);
        return false;
      }
      const since = this.upSince.get(m.id) ?? now;
      this.upSince.set(m.id, since);
      return now - since >= QUORUM_SETTLE_MS;
    });
    const { membership, majority } = quorum(this.membership, counted, this.selfId);
    for (const id of membership) this.upSince.delete(id);
    if (membership.size !== this.membership.size) this.log.info({ members: membership.size }, "a majority is counted among these members now");
    this.membership = membership;
    if (majority !== this.minority) return;
    this.minority = !majority;
    const up = this.options.mesh.members().filter((m) => m.status === "up").length;
    if (this.minority) {
      this.log.warn({ up, members: membership.size, workflows: this.owned.size }, "no majority of the mesh is up here: workflows owned here are paused");
      for (const wf of this.owned.values()) wf.actor.send({ type: "PAUSE" });
      for (const id of this.owned.keys()) this.emit("changed", id);
      return;
    }
    this.majoritySince = monotonicNow();
    this.log.info({ up, members: membership.size, workflows: this.owned.size }, "a majority of the mesh is up here again: resuming the paused workflows");
    void this.resumePaused();
  }

  private async resumePaused(): Promise<void> {
    // Right after a heal, a node that took one of these over may still be marked down here, and
    // so out of reach of the ask below: resume once the down marks of the heal have settled.
    const regained = this.majoritySince;
    await new Promise((resolve) => setTimeout(resolve, TAKEOVER_AFTER_HEAL_MS).unref());
    if (this.minority || this.closing || this.majoritySince !== regained) return;
    // Ends not shown yet too: one ended here while cut off may have been taken over meanwhile.
    const ids = [...this.owned.keys(), ...this.ending.keys()];
    try {
      const claims = (await this.claims?.ask(ids)) ?? new Map<string, WorkflowClaim>();
      for (const claim of claims.values()) this.fence(claim);
    } catch (err) {
      this.log.warn({ err }, "could not ask the peers who owns the paused workflows; resuming them, fencing stops any owned elsewhere");
    }
    if (this.minority || this.closing) return; // lost it again meanwhile: the next majority resumes them
    for (const wf of this.owned.values()) {
      if (!(wf.actor.getSnapshot().context as WorkflowContext).paused) continue;
      wf.actor.send({ type: "RESUME" });
      this.emit("changed", wf.id);
    }
    this.deferTakeovers();
  }

  /** Another node owns a workflow at a higher epoch: stop the copy here, without ending it. */
  private fence(claim: WorkflowClaim): void {
    const waiting = this.waiting.get(claim.workflow_id);
    if (waiting && supersedes(claim, waiting.stored)) {
      this.waiting.delete(claim.workflow_id);
      this.backups?.forget(claim.workflow_id);
      waiting.settle(Promise.reject(new ShoalError("SHOAL_ERR_DRAINING", `workflow ${claim.workflow_id} is owned by another node now`)));
      this.emit("changed", claim.workflow_id);
    }
    const wf = this.owned.get(claim.workflow_id);
    if (!wf) {
      this.dropSuperseded(claim);
      return;
    }
    if (!supersedes(claim, { owner: this.selfId, epoch: wf.epoch })) return;
    this.log.warn({ workflowId: wf.id, owner: claim.owner_name, epoch: claim.epoch, ourEpoch: wf.epoch }, "another node took this workflow over; stopping it here");
    this.directory.handOver(wf.id, { id: claim.owner, name: claim.owner_name });
    wf.fenced = true;
    this.endTrial(wf);
    this.ownershipStats.gaveWay++;
    this.owned.delete(wf.id);
    this.conflicts.delete(wf.id);
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
    if (!store || !known || !supersedes(claim, known)) return;
    store.forget(claim.workflow_id);
    this.deadlines.forget(claim.workflow_id);
    this.keptCheckpoints.forget(claim.workflow_id);
    this.backups?.forget(claim.workflow_id);
    this.copyBackups.delete(claim.workflow_id);
    this.copies?.forget(claim.workflow_id);
    if (known.owner !== this.selfId) return; // a replica kept for the replaced owner
    this.ownershipStats.gaveWay++;
    // Never shown, so nothing to report: the new owner's outcome is the only one given out.
    this.ending.delete(claim.workflow_id);
    this.directory.handOver(claim.workflow_id, { id: claim.owner, name: claim.owner_name });
    const outcome = this.ended.get(claim.workflow_id);
    const hadOutcome = this.ended.delete(claim.workflow_id);
    // It may have been read already: the new owner keeps it beside its own, as a conflict.
    if (outcome) this.reportOutcome(claim, known.epoch, outcome);
    this.log.warn({ workflowId: claim.workflow_id, owner: claim.owner_name, epoch: claim.epoch, ourEpoch: known.epoch, hadOutcome }, "another node owns this workflow now; dropped it here");
    if (hadOutcome) this.emit("changed", claim.workflow_id);
  }

  private reportOutcome(claim: WorkflowClaim, epoch: number, outcome: { state: WorkflowState; result: WorkflowResult }): void {
    const op: WorkflowReplica = {
      op: "ended",
      workflow_id: claim.workflow_id,
      owner: this.selfId,
      epoch,
      ended_at: Date.parse(outcome.state.ended_at ?? "") || Date.now(),
      state: outcome.state,
      result: outcome.result,
    };
    this.options.transport.request(claim.owner, "workflow.replica", op, { timeoutMs: 5_000 }).catch((err: unknown) => {
      this.log.warn({ err, workflowId: claim.workflow_id, owner: claim.owner_name }, "could not tell the new owner the outcome reached here; it is lost");
    });
  }

  /** Of any workflow in the mesh (see `WorkflowDirectory`): the seed's state format. */
  state(id: string): Promise<WorkflowState> {
    return this.directory.state(id);
  }

  /** The seed's response format; SHOAL_ERR_WORKFLOW_RUNNING while it runs. */
  result(id: string): Promise<WorkflowResult> {
    return this.directory.result(id);
  }

  /** Stops the running steps; the workflow ends `partial` or `failed`. Of an ended one, its state. */
  cancel(id: string): Promise<WorkflowState> {
    return this.directory.cancel(id);
  }

  /** Resolves with the result once a workflow this node owns has ended. */
  wait(id: string): Promise<WorkflowResult> {
    const done = this.ended.get(id);
    if (done) return Promise.resolve(done.result);
    const waiting = this.waiting.get(id);
    if (waiting) return waiting.ended;
    const ending = this.ending.get(id);
    if (ending) return ending.done;
    const wf = this.owned.get(id);
    if (!wf) return Promise.reject(new ShoalError("SHOAL_ERR_UNKNOWN_WORKFLOW", `${this.nodeName} does not own workflow ${id}`));
    return wf.ended;
  }

  /** Workflows running here (this node owns them and they have not ended), those waiting for their turn to resume included. */
  get running(): number {
    return this.owned.size + this.waiting.size;
  }

  /** Workflows this node owns, newest first. */
  list(): WorkflowSummary[] {
    return [...this.ended.keys(), ...this.ending.keys(), ...this.waiting.keys(), ...this.owned.keys()].reverse().map((id) => {
      const s = this.localState(id);
      return { workflow_id: s.workflow_id, name: s.name, status: s.status, owner: s.owner, started_at: s.started_at, progress: s.progress };
    });
  }

  /** Workflows of every live node, newest first; a node that does not answer is left out. */
  listMesh(): Promise<WorkflowSummary[]> {
    return this.directory.listMesh();
  }

  private here(id: string): boolean {
    return this.owned.has(id) || this.ended.has(id) || this.waiting.has(id) || this.ending.has(id);
  }

  private get retainMs(): number {
    return this.options.retainMs ?? 60 * 60_000;
  }

  /**
   * Keeps what an ended workflow said and lets its actors go. The outcome is shown (state,
   * result, `wait`, the webhook) once every peer given a copy has the end, or is down while this
   * node sees a majority: until then one of them could take the workflow over with its older
   * copy and reach another outcome, and an outcome once given out is never replaced. Meanwhile
   * it reads `running`, `ending: "replicating"`, and its store row says so (a restart asks the
   * peers before it shows it). Rejects with SHOAL_ERR_DRAINING if another node took it over
   * meanwhile, or this node is stopping.
   */
  private async retire(wf: OwnedWorkflow, result: WorkflowResult): Promise<void> {
    const id = wf.id;
    this.endTrial(wf); // its count is cleared with the end stored below
    const state = this.localState(id);
    this.owned.delete(id);
    this.conflicts.delete(id);
    this.progress?.end(id);
    const final: EndedCopy = { endedAt: Date.now(), state, result };
    const published = this.publishes();
    if (published) this.storeEnd(id, { ...final, state: { ...state, ending: "replicating" } });
    else void this.backups?.ended(id, wf.epoch, final);
    this.ending.set(id, { ...final, done: wf.ended });
    this.emit("changed", id);
    if (published) await this.publishEnd(id, wf.epoch, final);
    await this.showEnd(id, final);
  }

  /** The end is kept by the peers that hold copies: shown from now on. */
  private async showEnd(id: string, final: EndedCopy): Promise<WorkflowResult> {
    if (!this.ending.delete(id) || this.closing) {
      this.emit("changed", id);
      throw new ShoalError("SHOAL_ERR_DRAINING", this.closing ? `${this.nodeName} is stopping; workflow ${id} is shown once it starts again` : `workflow ${id} is owned by another node now`);
    }
    this.storeEnd(id, final);
    this.keepEnded(id, final.state, final.result, Math.max(0, this.retainMs - (Date.now() - final.endedAt)));
    this.emit("changed", id);
    return final.result;
  }

  /** Whether an end waits for the peers holding copies before it is shown (`--ack replicated` with a store). */
  private publishes(): boolean {
    return this.backups !== undefined && (this.options.ack ?? "replicated") === "replicated";
  }

  private storeEnd(id: string, final: EndedCopy): void {
    try {
      this.options.store?.ended({ id, ...final });
    } catch (err) {
      this.log.error({ err, workflowId: id }, "could not store the end of a workflow");
    }
  }

  /**
   * Tells every peer given a copy that the workflow ended, again to those that did not answer,
   * until each has answered or is down while this node has seen a majority for a while (right
   * after a heal, a holder still marked down may be up, and may have taken the workflow over on
   * the other side: its answer fences this end). Returns early once the workflow is no longer
   * ending here (another node took it over) or this node stops.
   */
  private async publishEnd(id: string, epoch: number, final: EndedCopy): Promise<void> {
    const backups = this.backups;
    if (!backups) return;
    const since = monotonicNow();
    const isDown = (nodeId: string) => this.options.mesh.member(nodeId)?.status === "down";
    let missed = await backups.ended(id, epoch, final);
    for (;;) {
      if (!this.ending.has(id) || this.closing) return;
      // Every holder has the end: none can take the workflow over from an older copy, whatever side this is.
      if (missed.length === 0) return;
      const open = missed.filter((n) => !isDown(n));
      const settled = this.settled();
      if (settled && open.length === 0) return;
      // A holder that is up and never answers (hung, or hostile) must not hold the outcome for good.
      if (settled && monotonicNow() - since > PUBLISH_GIVE_UP_MS) return;
      await new Promise((resolve) => setTimeout(resolve, PUBLISH_RETRY_MS).unref());
      // The down ones stay owed: they are told once they are up again.
      const down = missed.filter(isDown);
      const stillOpen = missed.filter((n) => !isDown(n));
      missed = [...down, ...(stillOpen.length > 0 ? await backups.ended(id, epoch, final, stillOpen) : [])];
    }
  }

  /**
   * Right after a heal the down marks are stale (a peer's refutation may still be on its way, or a
   * rumor from the other side marks a member down that this side saw alive): only owners still
   * down once this node has seen a majority for a while are taken over.
   */
  private deferTakeovers(): void {
    if (this.takeoverTimer) return;
    this.takeoverTimer = setTimeout(
      () => {
        this.takeoverTimer = undefined;
        // One takeOver handles every down owner whose copies are kept here; owners with none need no call.
        const down = this.options.store?.copyOwners(this.selfId).find((owner) => this.options.mesh.member(owner)?.status === "down");
        if (!this.minority && down !== undefined) this.takeOver(down);
      },
      Math.max(0, this.majoritySince + TAKEOVER_AFTER_HEAL_MS - monotonicNow()) + 10,
    ).unref();
  }

  /**
   * Before a workflow owned here is read on a node that is cut off or just healed (an end not
   * shown yet, or, once healed, one still running): asks the peers it reaches whether one of
   * them took the workflow over meanwhile (and may have given out its own outcome, which a reader
   * must not see go back to running), and gives way if so. Then the read goes to the new owner.
   * A running one on a side that is still cut off is not asked about: its result is refused
   * (SHOAL_ERR_MINORITY) and its state says it is paused.
   */
  private async checkTakenOver(id: string): Promise<void> {
    if (this.settled() || !this.claims) return;
    if (!this.ending.has(id) && !(this.owned.has(id) && !this.minority)) return;
    let asked = this.takeoverChecks.get(id);
    if (!asked) {
      const claims = this.claims;
      asked = claims
        .ask([id])
        .then((found) => {
          const claim = found.get(id);
          const known = this.options.store?.ownership(id);
          if (claim && (!known || supersedes(claim, known))) this.fence(claim);
        })
        .catch((err: unknown) => this.log.warn({ err, workflowId: id }, "could not ask the peers whether they took over an ending workflow"))
        .finally(() => this.takeoverChecks.delete(id));
      this.takeoverChecks.set(id, asked);
    }
    await asked;
  }

  /** Whether this node sees a majority, and has for long enough that its down marks are not stale from a heal. */
  private settled(): boolean {
    return !this.minority && monotonicNow() - this.majoritySince >= TAKEOVER_AFTER_HEAL_MS;
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
    this.backups?.forget(id);
    try {
      this.options.store?.forget(id);
    } catch (err) {
      this.log.warn({ err, workflowId: id }, "could not drop an ended workflow from the store");
    }
  }

  private require(id: string): OwnedWorkflow {
    const wf = this.owned.get(id);
    if (wf) return wf;
    if (this.resumingHere(id)) throw resumingError(`${this.nodeName} owns workflow ${id} and is taking it back from its store after a restart; try again in a moment`);
    // Not "unknown": that would make the asker answer 404 for a workflow that exists.
    const moved = this.directory.handedOverTo(id);
    if (moved) throw new ShoalError("SHOAL_ERR_HANDED_OVER", `workflow ${id} was handed over by ${this.nodeName} to ${moved.name}`);
    throw new ShoalError("SHOAL_ERR_UNKNOWN_WORKFLOW", `no workflow ${id} on ${this.nodeName}`);
  }

  private localState(id: string): WorkflowState {
    const done = this.ended.get(id) ?? this.copies?.get(id);
    if (done) return done.state;
    const ending = this.ending.get(id);
    if (ending) return { ...ending.state, status: "running", ended_at: null, ending: "replicating" };
    const waiting = this.waiting.get(id);
    if (waiting) return stateOf(storedContext(waiting.stored, restorePlan(waiting.stored.spec, waiting.stored.instances)), this.nodeName, () => ({ placement: "waiting: resumed alone once the workflows before it survived their resume" }));
    const wf = this.require(id);
    const snap = wf.actor.getSnapshot();
    const ctx = snap.context as WorkflowContext;
    const state = stateOf(ctx, this.nodeName, (_instance, actorId) => this.detailsOf(actorId));
    const conflicts = this.conflicts.get(id);
    return { ...state, ...(this.backups && { copies: this.backups.copiesOf(id) }), ...(ctx.paused && { paused: "minority" as const }), ...(conflicts && { conflicts }) };
  }

  private localResult(id: string): WorkflowResult {
    const done = this.ended.get(id) ?? this.copies?.get(id);
    if (done) return done.result;
    if (this.minority && (this.ending.has(id) || this.owned.has(id))) {
      // "Still running" is what this side sees, not what the mesh may have done meanwhile.
      throw new ShoalError(
        "SHOAL_ERR_MINORITY",
        `workflow ${id} is owned here, but this node sees only a minority of the mesh: its steps are paused, and a node on the majority side may have taken it over and ended it; ask a node there, or again after the heal`,
        { retryAfterMs: 1_000 },
      );
    }
    if (this.ending.has(id)) throw new ShoalError("SHOAL_ERR_WORKFLOW_RUNNING", `workflow ${id} has ended and is shown once the nodes holding its copies have the end`);
    if (this.waiting.has(id)) throw new ShoalError("SHOAL_ERR_WORKFLOW_RUNNING", `workflow ${id} is still running (waiting to be resumed)`);
    const wf = this.require(id);
    const ctx = wf.actor.getSnapshot().context as WorkflowContext;
    if (ctx.endedAt === null) throw new ShoalError("SHOAL_ERR_WORKFLOW_RUNNING", `workflow ${id} is still running`);
    return resultOf(ctx);
  }

  private localCancel(id: string): WorkflowState {
    const done = this.ended.get(id) ?? this.copies?.get(id);
    if (done) return done.state;
    if (this.ending.has(id)) return this.localState(id); // ended already: nothing left to stop
    const waiting = this.waiting.get(id);
    if (waiting) {
      this.log.info({ workflowId: id }, "cancelling a workflow waiting to be resumed");
      this.waiting.delete(id);
      if (this.endStored(waiting.stored, { code: "SHOAL_ERR_CANCELLED", message: "the workflow was cancelled" }, false)) {
        waiting.settle(Promise.resolve(this.localResult(id)));
        return this.localState(id);
      }
      this.waiting.set(id, waiting);
      throw new ShoalError("SHOAL_ERR_STORE", `workflow ${id} could not be cancelled`);
    }
    const wf = this.require(id);
    if (wf.actor.getSnapshot().status === "active") {
      this.log.info({ workflowId: id }, "cancelling workflow");
      wf.actor.send({ type: "CANCEL" });
    }
    return this.localState(id);
  }

  /** Where the runtime put a step's actor and why, or why it still waits. */
  private detailsOf(actorId: string | null): StepDetails {
    const where = actorId ? this.options.runtime.placementOf(actorId) : undefined;
    const placement = !where ? null : where.decision && where.placed ? `${where.decision.nodeName}: ${where.decision.why}` : where.waiting ? `waiting: ${where.waiting}` : null;
    return { placement };
  }

  /** What the directory is told of a workflow this node does not answer for. */
  private knowledgeOf(id: string): LocalKnowledge {
    return { resumingHere: this.resumingHere(id), joining: !this.resumed && this.options.store !== undefined };
  }

  /** Owned here by the store's account, not yet taken back from it since the start. */
  private resumingHere(id: string): boolean {
    if (this.resumed || this.here(id)) return false;
    return this.options.store?.ownership(id)?.owner === this.selfId;
  }
}
