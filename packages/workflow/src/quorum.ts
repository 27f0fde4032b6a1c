import type { NodeStatus } from "@shoal/protocol";

/** The smallest membership that a majority is counted in; below it, the two-node rule. */
export const QUORUM_MIN_MEMBERS = 3;

export interface QuorumVerdict {
  /** The membership a majority is counted in from now on (ids, this node's own among them). */
  membership: Set<string>;
  /** Whether this node may start steps of the workflows it owns, and take over others. */
  majority: boolean;
}

/**
 * Who may dispatch a workflow's steps while the mesh may be split: only a node that sees a strict
 * majority of the last agreed membership up, itself included. The membership grows with every
 * member seen up (a member that joins is counted at once: that only makes a majority harder), and
 * shrinks only on a side that holds a majority, by the members it sees down, never below
 * QUORUM_MIN_MEMBERS: so a mesh of 4 that lost one node for good is a mesh of 3, and then 2 of
 * those 3 still run, while a side cut off alone never talks itself into a majority. `suspect` is
 * not `up`: a side pauses as soon as it suspects it is the smaller one, before the other side
 * (which waits for `down`) takes over. With fewer than 3 members (a 2-node mesh) every node runs,
 * as neither can tell a dead peer from a cut link: the ownership epoch fences the replaced owner
 * at the heal, and a conflict of outcomes is recorded (see the README, Partitions). No I/O.
 */
export function quorum(previous: ReadonlySet<string>, members: readonly { id: string; status: NodeStatus }[], selfId: string): QuorumVerdict {
  const status = new Map(members.map((m) => [m.id, m.status]));
  status.set(selfId, "up");
  const grown = new Set([...previous, selfId]);
  for (const [id, s] of status) if (s === "up") grown.add(id);
  if (grown.size < QUORUM_MIN_MEMBERS) return { membership: grown, majority: true };
  const up = [...grown].filter((id) => status.get(id) === "up").length;
  const majority = up * 2 > grown.size;
  if (!majority) return { membership: grown, majority };
  // A member the table forgot (down past its retention) counts as down.
  const notDown = new Set([...grown].filter((id) => status.has(id) && status.get(id) !== "down"));
  return { membership: notDown.size >= QUORUM_MIN_MEMBERS ? notDown : grown, majority };
}
