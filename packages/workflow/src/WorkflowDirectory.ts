import type { Mesh } from "@shoal/mesh";
import {
  type PeerMethods,
  type PeerRequestInput,
  type PeerResponseBody,
  ShoalError,
  type WorkflowResult,
  type WorkflowState,
  type WorkflowSummary,
  isShoalError,
} from "@shoal/protocol";
import type { Transport } from "@shoal/transport";
import { ownerTag, ownerTagOf } from "./workflowIds.js";

export type WorkflowRead = "workflow.state" | "workflow.result" | "workflow.cancel";

/**
 * What the owner's side (`WorkflowService`) shows the directory of the workflows this node
 * holds: those it owns (running, ending, waiting to resume, ended) and the ended copies it keeps
 * for other owners, and how it reads them.
 */
export interface LocalWorkflows {
  /** Owned here: running, ending, waiting to resume, or ended. */
  owns(id: string): boolean;
  /** The owner of an ended copy kept here for another node, if one is kept. */
  copyOwner(id: string): string | undefined;
  /** This node has seen a majority for long enough that its down marks are not stale from a heal. */
  settled(): boolean;
  /** Before a read of a workflow owned here, when a peer may have taken it over meanwhile: asks, and gives way if one did. */
  checkTakenOver(id: string): Promise<void>;
  knowledgeOf(id: string): LocalKnowledge;
  state(id: string): WorkflowState;
  result(id: string): WorkflowResult;
  cancel(id: string): WorkflowState;
  list(): WorkflowSummary[];
}

/** What this node knows of a workflow it cannot answer for itself. */
export interface LocalKnowledge {
  /** This node owns it but has not taken it back from its store yet (just restarted). */
  resumingHere: boolean;
  /** This node is still joining the mesh after a start: its peers may hold what it does not know. */
  joining: boolean;
}

/** How long a client is told to wait (Retry-After) when the answer is only a moment away. */
const RETRY_AFTER_MS = 1_000;
/** What a peer that cannot answer says, or what the link says for it: the others are asked then. */
const NOT_AN_ANSWER = new Set([
  "SHOAL_ERR_UNKNOWN_WORKFLOW",
  "SHOAL_ERR_RESUMING",
  "SHOAL_ERR_MINORITY",
  "SHOAL_ERR_HANDED_OVER",
  "SHOAL_ERR_NOT_CONNECTED",
  "SHOAL_ERR_PEER_CLOSED",
  "SHOAL_ERR_REQUEST_TIMEOUT",
  "SHOAL_ERR_BACKPRESSURE",
]);
/** What a link says when the peer could not be asked at all: it may be the one that answers. */
const NOT_ASKED = new Set(["SHOAL_ERR_NOT_CONNECTED", "SHOAL_ERR_PEER_CLOSED", "SHOAL_ERR_REQUEST_TIMEOUT", "SHOAL_ERR_BACKPRESSURE"]);
/** Hand-overs remembered, newest kept: enough for the retained workflows of a busy node. */
const MAX_HANDED_OVER = 10_000;

/**
 * The mesh-wide side of reading a workflow, for the API here and for peers: this node answers
 * for what it owns and, under `answersFromCopy`'s rule, for the ended copies it keeps; for the
 * rest it finds the node that answers.
 * The owner the id names (or the node it was handed over to) is asked first, then every live
 * peer; the first answer wins, so a peer that never answers costs nothing. When nobody answers,
 * the error says why as precisely as this node can tell: the owner is taking its store back
 * (503 SHOAL_ERR_RESUMING), the owner is down or does not answer and no live node holds a copy
 * (503 SHOAL_ERR_OWNER_UNAVAILABLE naming it), or no node ever accepted it (404): a 404 only when
 * the owner the id names says it does not know it, or, for an id naming no owner this node
 * knows, once this node has joined.
 */
export class WorkflowDirectory {
  /** Owner tags of the ids seen so far, and the node each one names: down nodes too, once the table forgot them. */
  private readonly tags = new Map<string, { id: string; name: string }>();
  /** Workflows this node gave way on, and the node that took each one. */
  private readonly handedOver = new Map<string, { id: string; name: string }>();

  constructor(private readonly options: { selfId: string; nodeName: string; mesh: Mesh; transport: Transport; local: LocalWorkflows }) {
    const { transport: t, local } = options;
    t.handle("workflow.state", async ({ id }) => {
      await local.checkTakenOver(id);
      this.checkCopyRead(id);
      return local.state(id);
    });
    t.handle("workflow.result", async ({ id }) => {
      await local.checkTakenOver(id);
      this.checkCopyRead(id);
      return local.result(id);
    });
    t.handle("workflow.cancel", ({ id }) => local.cancel(id));
    t.handle("workflow.list", () => local.list());
  }

  /**
   * The seed's state format, from whichever node owns the workflow, or of an ended one from a
   * copy (here, or on any live node while its owner is down). SHOAL_ERR_OWNER_UNAVAILABLE when
   * its id names an owner that is down and no live node holds a copy; SHOAL_ERR_UNKNOWN_WORKFLOW
   * when no node knows it.
   */
  state(id: string): Promise<WorkflowState> {
    return this.read(id, "workflow.state", () => this.options.local.state(id));
  }

  /** The seed's response format; SHOAL_ERR_WORKFLOW_RUNNING while it runs. Found as `state` is. */
  result(id: string): Promise<WorkflowResult> {
    return this.read(id, "workflow.result", () => this.options.local.result(id));
  }

  /** Stops the running steps; the workflow ends `partial` or `failed`. Of an ended one, its state. */
  cancel(id: string): Promise<WorkflowState> {
    return this.read(id, "workflow.cancel", () => this.options.local.cancel(id));
  }

  /** Workflows of every live node, newest first; a node that does not answer is left out. */
  async listMesh(): Promise<WorkflowSummary[]> {
    const { mesh, transport, local } = this.options;
    const peers = mesh.members().filter((m) => !m.self && m.status !== "down");
    const answers = await Promise.allSettled(peers.map((p) => transport.request(p.id, "workflow.list", {}, { timeoutMs: 5_000 })));
    const all = [...local.list(), ...answers.flatMap((a) => (a.status === "fulfilled" ? a.value : []))];
    return all.sort((x, y) => y.started_at.localeCompare(x.started_at));
  }

  /**
   * Answered here if owned here; from an ended copy kept here only while its owner is down or
   * does not answer: an owner that is up answers itself, as it may still be telling the other
   * copy holders the end, and shows it only then (a copy that answered first would show an
   * outcome the owner then reads as running).
   */
  private async read<K extends WorkflowRead>(id: string, method: K, answerHere: () => PeerResponseBody<PeerMethods, K>): Promise<PeerResponseBody<PeerMethods, K>> {
    const { local } = this.options;
    await local.checkTakenOver(id);
    if (local.owns(id)) return answerHere();
    const copyOwner = local.copyOwner(id);
    if (copyOwner !== undefined && this.answersFromCopy(copyOwner)) return answerHere();
    try {
      return await this.ask(id, method, local.knowledgeOf(id));
    } catch (err) {
      if (copyOwner !== undefined && local.settled() && (isShoalError(err, "SHOAL_ERR_OWNER_UNAVAILABLE") || isShoalError(err, "SHOAL_ERR_UNKNOWN_WORKFLOW"))) return answerHere();
      throw err;
    }
  }

  /**
   * Whether this node answers for another owner's ended workflow from the copy it keeps: only
   * while that owner is down, and this node has seen a majority for a while. The end in a copy
   * may be one its owner has not shown (it was cut off); on a side that is not settled, the
   * node that took the workflow over may have another outcome, the one that counts.
   */
  private answersFromCopy(owner: string): boolean {
    return this.options.local.settled() && (this.options.mesh.member(owner)?.status ?? "down") === "down";
  }

  /** A peer's read of a workflow this node holds only a copy of: answered under `answersFromCopy`'s rule. */
  private checkCopyRead(id: string): void {
    const { local } = this.options;
    const copyOwner = local.owns(id) ? undefined : local.copyOwner(id);
    if (copyOwner !== undefined && !this.answersFromCopy(copyOwner)) {
      throw new ShoalError("SHOAL_ERR_UNKNOWN_WORKFLOW", `${this.options.nodeName} keeps only a copy of workflow ${id}; its owner answers for it`);
    }
  }

  /** `id` is owned by `owner` now, no longer here: reads go there first. */
  handOver(id: string, owner: { id: string; name: string }): void {
    this.handedOver.delete(id);
    this.handedOver.set(id, owner);
    for (const old of this.handedOver.keys()) {
      if (this.handedOver.size <= MAX_HANDED_OVER) break;
      this.handedOver.delete(old);
    }
  }

  /** The node this one gave `id` way to, if it did. */
  handedOverTo(id: string): { id: string; name: string } | undefined {
    return this.handedOver.get(id);
  }

  /** Asks the mesh for a workflow this node does not answer for. */
  private async ask<K extends WorkflowRead>(id: string, method: K, here: LocalKnowledge): Promise<PeerResponseBody<PeerMethods, K>> {
    // All three take WorkflowQuerySchema; TypeScript cannot tell that through the generic.
    const query = { id } as PeerRequestInput<PeerMethods, K>;
    const { mesh, transport, selfId } = this.options;
    const live = (nodeId: string) => nodeId !== selfId && (mesh.member(nodeId)?.status ?? "down") !== "down";
    const replies: unknown[] = [];
    const ask = async (peers: string[]): Promise<{ answer: PeerResponseBody<PeerMethods, K> } | { error: unknown } | undefined> => {
      try {
        return { answer: await Promise.any(peers.map((p) => transport.request(p, method, query, { timeoutMs: 10_000 }))) };
      } catch (err) {
        const reasons = err instanceof AggregateError ? err.errors : [err];
        replies.push(...reasons);
        // An answer about the workflow itself (say, 409 while it runs) is the answer.
        const error = reasons.find((e) => isShoalError(e) && !NOT_AN_ANSWER.has(e.code));
        return error ? { error } : undefined;
      }
    };
    const owner = this.handedOver.get(id) ?? this.ownerNamedBy(id);
    const direct = owner && live(owner.id) ? await ask([owner.id]) : undefined;
    // The owner said it does not know the id: only that (not silence, a closed link or a timeout) makes a 404.
    const ownerDenies = direct === undefined && owner !== undefined && replies.some((e) => isShoalError(e, "SHOAL_ERR_UNKNOWN_WORKFLOW"));
    const answered = direct ?? (await ask(mesh.members().filter((m) => live(m.id) && m.id !== owner?.id).map((m) => m.id)));
    if (answered && "answer" in answered) return answered.answer;
    if (answered) throw answered.error;
    if (here.resumingHere) throw resumingError(`workflow ${id} is owned here and is being taken back from the store after a restart; try again in a moment`);
    const resuming = replies.find((e): e is ShoalError => isShoalError(e, "SHOAL_ERR_RESUMING"));
    if (resuming) throw resumingError(resuming.message);
    // An owner cut off from the majority, with nobody else answering: what it said is the most there is to say.
    const minority = replies.find((e): e is ShoalError => isShoalError(e, "SHOAL_ERR_MINORITY"));
    if (minority) throw minority;
    const moved = replies.find((e): e is ShoalError => isShoalError(e, "SHOAL_ERR_HANDED_OVER"));
    if (moved) throw new ShoalError("SHOAL_ERR_OWNER_UNAVAILABLE", `${moved.message}, and no live node answers for it now; try again in a moment`, { retryAfterMs: RETRY_AFTER_MS });
    if (owner && owner.id !== selfId && !ownerDenies) {
      const why = live(owner.id) ? "which does not answer" : "which is down";
      throw new ShoalError("SHOAL_ERR_OWNER_UNAVAILABLE", `workflow ${id} is owned by ${owner.name}, ${why}, and no live node holds a copy of it; try again once ${owner.name} is back`, {
        retryAfterMs: RETRY_AFTER_MS,
      });
    }
    // The node the id names may have given it way to another and forgotten (a restart since): a
    // live peer that could not be asked may be that one, so "no node knows it" would be a guess.
    const unasked = replies.filter((e): e is ShoalError => isShoalError(e) && NOT_ASKED.has(e.code)).length;
    if (unasked > 0) {
      throw new ShoalError("SHOAL_ERR_OWNER_UNAVAILABLE", `no live node answers for workflow ${id} now: ${unasked} of them could not be asked; try again in a moment`, {
        retryAfterMs: RETRY_AFTER_MS,
      });
    }
    // With no owner to settle it (an id without a tag, or whose node this one has not heard of
    // yet), a node still joining cannot tell a workflow it has not heard of from one that never was.
    if (here.joining && !ownerDenies) {
      throw resumingError(`no live node answers for workflow ${id} yet: this node is still joining the mesh; try again in a moment`);
    }
    throw new ShoalError("SHOAL_ERR_UNKNOWN_WORKFLOW", `no node in the mesh knows workflow ${id}`);
  }

  /** The node whose tag the id carries (up or down, if this node ever saw it); undefined for ids without a tag, or of a node never seen. */
  private ownerNamedBy(id: string): { id: string; name: string } | undefined {
    const tag = ownerTagOf(id);
    if (tag === undefined) return undefined;
    if (!this.tags.has(tag)) for (const m of this.options.mesh.members()) this.tags.set(ownerTag(m.id), { id: m.id, name: m.name });
    return this.tags.get(tag);
  }
}

/** 503 SHOAL_ERR_RESUMING: the answer exists but is a moment away. */
export function resumingError(message: string): ShoalError {
  return new ShoalError("SHOAL_ERR_RESUMING", message, { retryAfterMs: RETRY_AFTER_MS });
}
