import type { Mesh } from "@shoal/mesh";
import { type PeerMethods, type PeerRequestInput, type PeerResponseBody, ShoalError, isShoalError } from "@shoal/protocol";
import type { Transport } from "@shoal/transport";
import { ownerTag, ownerTagOf } from "./workflowIds.js";

export type WorkflowRead = "workflow.state" | "workflow.result" | "workflow.cancel";

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
/** Hand-overs remembered, newest kept: enough for the retained workflows of a busy node. */
const MAX_HANDED_OVER = 10_000;

/**
 * The mesh-wide side of reading a workflow: which node answers for one this node does not hold.
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

  constructor(private readonly options: { selfId: string; mesh: Mesh; transport: Transport }) {}

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
  async ask<K extends WorkflowRead>(id: string, method: K, here: LocalKnowledge): Promise<PeerResponseBody<PeerMethods, K>> {
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
