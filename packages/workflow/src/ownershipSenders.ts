import type { NodeIdentity } from "@shoal/protocol";
import { ownerTag, ownerTagOf } from "./workflowIds.js";

/** What a node knows of who owns a workflow, for the sender rules of `workflow.replica` and `workflow.claimed`. */
export interface OwnershipView {
  selfId: string;
  /** Owner and epoch of a workflow known here, owned or kept as a copy. */
  ownership(workflowId: string): { owner: string; epoch: number } | undefined;
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
  if (op.epoch <= known.epoch) return undefined;
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
  if (!known || claim.epoch <= known.epoch) return undefined;
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
