import type { NodeIdentity } from "@shoal/protocol";
import { ownerTag, ownerTagOf } from "./workflowIds.js";

/**
 * The ownership rules of workflows in one place, pure: who owns (the highest epoch), who gives
 * way (an owner or a copy that hears of a higher epoch), who may take over (the holder of a copy
 * whose owner is down, at the next epoch), and who may say so (the sender rules of
 * `workflow.replica` and `workflow.claimed`). The store, `WorkflowService`, `BackupLink` and
 * `OwnershipClaims` act on what these say.
 */

/** Who owns a workflow, as one node knows it. */
export interface Ownership {
  owner: string;
  epoch: number;
}

/**
 * How news of a workflow's owner (a claim, a copy) stands against what this node knows:
 * - `unknown`: nothing is known here;
 * - `newer`: at a higher epoch: it replaces what is known (an owner here gives way, a copy here
 *   is dropped or replaced);
 * - `same`: the owner known here, at its epoch;
 * - `rival`: another owner at the known epoch: refused, as `stale` is;
 * - `stale`: from an epoch already replaced (a replaced owner, a late message): fenced.
 */
export type OwnershipNews = "unknown" | "newer" | "same" | "rival" | "stale";

export function compareOwnership(known: Ownership | undefined, news: Ownership): OwnershipNews {
  if (!known) return "unknown";
  if (news.epoch > known.epoch) return "newer";
  if (news.epoch < known.epoch) return "stale";
  return news.owner === known.owner ? "same" : "rival";
}

/** Whether news replaces what is known here: the one question most call sites ask. */
export function supersedes(news: Ownership, known: Ownership | undefined): boolean {
  return compareOwnership(known, news) === "newer";
}

/** What a node that holds a copy knows when the copy's owner may be gone. */
export interface TakeoverView {
  /** This node sees no majority of the mesh: the owner may well be running it on the other side. */
  minority: boolean;
  /** This node has seen a majority for long enough that its down marks are not stale from a heal. */
  settled: boolean;
  isDown(nodeId: string): boolean;
}

/**
 * Whether this node takes over a workflow it holds a copy of, and at which epoch: only while
 * its owner is down, this node sees a settled majority, and no backup listed before it in the
 * copy's order is up (that one takes it). `defer`: not settled yet, ask again once it is.
 */
export function takeoverOf(copy: Ownership & { backups: string[] }, selfId: string, view: TakeoverView): { epoch: number } | "defer" | undefined {
  if (view.minority) return undefined;
  if (!view.settled) return "defer";
  if (!view.isDown(copy.owner)) return undefined;
  const ahead = copy.backups.includes(selfId) ? copy.backups.slice(0, copy.backups.indexOf(selfId)) : copy.backups;
  if (ahead.some((b) => !view.isDown(b))) return undefined;
  return { epoch: copy.epoch + 1 };
}

/** What a node knows of who owns a workflow, for the sender rules of `workflow.replica` and `workflow.claimed`. */
export interface OwnershipView {
  selfId: string;
  /** Owner and epoch of a workflow known here, owned or kept as a copy. */
  ownership(workflowId: string): Ownership | undefined;
  /** For a workflow owned here: whether `nodeId` was given its copy (only such a node can take it over). */
  holdsCopy(workflowId: string, nodeId: string): boolean;
  /** Whether this node sees `nodeId` up: an owner that is up has not been taken over from. */
  isUp(nodeId: string): boolean;
}

interface OwnershipMessage {
  workflow_id: string;
  owner: string;
  epoch: number;
}

/**
 * `workflow.replica`: only the owner sends copies of its workflows. It names itself; at an
 * epoch above the one known here it must be the next one (a takeover), and a takeover only
 * happens from an owner that is gone: of a workflow owned here, by a node that was given its
 * copy; of a copy kept here, while its owner is not up. A copy at the known epoch or below is
 * let through: the store answers `fenced` and keeps nothing. Of a workflow not known here, a
 * copy at epoch 1 comes from the node that accepted it, whose tag its id carries; a first copy
 * at a later epoch (a taker-over placing a new backup) cannot be checked and is taken as it comes.
 */
export function replicaRefusal(view: OwnershipView, op: OwnershipMessage, from: NodeIdentity): string | undefined {
  if (op.owner !== from.id) return `it sends workflow ${op.workflow_id} as owned by node ${op.owner}, not by itself`;
  const known = view.ownership(op.workflow_id);
  if (!known) return op.epoch === 1 ? acceptorRefusal(op.workflow_id, from.id) : undefined;
  if (!supersedes(op, known)) return undefined;
  const next = nextEpochRefusal(op, known);
  if (next) return next;
  if (known.owner === view.selfId) return view.holdsCopy(op.workflow_id, from.id) ? undefined : `workflow ${op.workflow_id} is owned here and its copy is not with it`;
  return view.isUp(known.owner) ? `workflow ${op.workflow_id} is owned by node ${known.owner}, which is up` : undefined;
}

/**
 * `workflow.claimed`: a node claims a workflow for itself, at the epoch after the one known
 * here; of a workflow owned here, only a node that was given its copy. A claim at the known
 * epoch or below changes nothing here and is let through (peers repeat their claims on every
 * new link). A copy kept here for another owner gives way to a claim at the next epoch: it can
 * only be the owner's backup, and an owner that is still there sends its copy again.
 */
export function claimRefusal(view: OwnershipView, claim: OwnershipMessage, from: NodeIdentity): string | undefined {
  if (claim.owner !== from.id) return `it claims workflow ${claim.workflow_id} for node ${claim.owner}, not for itself`;
  const known = view.ownership(claim.workflow_id);
  if (!known || !supersedes(claim, known)) return undefined;
  const next = nextEpochRefusal(claim, known);
  if (next) return next;
  if (known.owner === view.selfId && !view.holdsCopy(claim.workflow_id, from.id)) return `workflow ${claim.workflow_id} is owned here and its copy is not with it`;
  return undefined;
}

/** Ids made before owner tags carry none, and pass. */
function acceptorRefusal(workflowId: string, senderId: string): string | undefined {
  const tag = ownerTagOf(workflowId);
  if (tag === undefined || tag === ownerTag(senderId)) return undefined;
  return `it sends workflow ${workflowId} at epoch 1, but the id names the node that accepted it, and that is not the sender`;
}

function nextEpochRefusal(message: OwnershipMessage, known: { epoch: number }): string | undefined {
  if (message.epoch === known.epoch + 1) return undefined;
  return `epoch ${message.epoch} for workflow ${message.workflow_id}, which is at epoch ${known.epoch} here: a takeover is at the next epoch only`;
}
