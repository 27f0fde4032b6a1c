import { createHash, randomBytes } from "node:crypto";

/** Hex digits of a node's tag in the ids of the workflows it accepts. */
const TAG_LENGTH = 8;
/** Random characters after the tag (ids before owner tags were `wf_` and these alone). */
const RANDOM_LENGTH = 12;

/** The short tag of a node in the ids of its workflows: the start of a hash of its id (any id, not only a UUID). */
export function ownerTag(nodeId: string): string {
  return createHash("sha256").update(nodeId).digest("hex").slice(0, TAG_LENGTH);
}

/**
 * A new workflow id that names the node accepting it: `wf_<tag><random>`. Any node can tell
 * from the id whom to ask, and whom to name when that node is down and no copy answers.
 */
export function newWorkflowId(ownerId: string): string {
  const random = randomBytes(RANDOM_LENGTH).toString("base64url").toLowerCase().replace(/[^a-z0-9]/g, "").padEnd(RANDOM_LENGTH, "0").slice(0, RANDOM_LENGTH);
  return `wf_${ownerTag(ownerId)}${random}`;
}

/** The owner tag an id carries; undefined for ids without one (made before tags, or not a workflow id). */
export function ownerTagOf(workflowId: string): string | undefined {
  const m = /^wf_([0-9a-f]{8})[a-z0-9]{12}$/.exec(workflowId);
  return m?.[1];
}
