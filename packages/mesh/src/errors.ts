import type { ErrorCatalog } from "@shoal/protocol";

/**
 * Codes of what the mesh refuses from its peers. None reaches an API caller: each goes to the
 * log (a few lines per window, the rest counted) and to a counter in `/metrics`.
 */
export const MeshErrors = {
  SHOAL_ERR_TABLE_FULL: { status: 503, doc: "a gossip record of a new member was refused: the table holds max-members rows and none of them is down" },
  SHOAL_ERR_FALSE_INCARNATION: { status: 400, doc: "a peer gossiped a record of this node at an incarnation it never had; ignored" },
  SHOAL_ERR_INCARNATION_EXHAUSTED: { status: 500, doc: "this node's incarnation is at its bound (2^31 - 1) and it cannot refute a suspicion; give it a new data dir" },
} as const satisfies ErrorCatalog;

export type MeshErrorCode = keyof typeof MeshErrors;
