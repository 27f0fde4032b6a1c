import type { Member, NodeIdentity } from "@shoal/protocol";

/**
 * Why a gossiped record breaks "a node speaks only for itself", or undefined when the table may
 * merge it. What a node is (name, address, tools, capabilities) is what it said in its hello,
 * which the handshake authenticated: its own record must agree (its slots and load are its own
 * to say), and so must a third party's record of it at the incarnation known here, which also
 * may not offer more slots than the node itself said it has (in its hello or its own record).
 * A third party may mark it suspect or down; its load is never taken second-hand. A record of a
 * node this one has no link to, or at another incarnation, cannot be checked against a hello:
 * the table's rules apply (a stranger is taken at incarnation 0 until it speaks for itself, a
 * higher incarnation only from the node itself), and neither can one while the table's own
 * record of the node is not yet what its hello says (a new life, linked a moment before its own
 * record arrives).
 *
 * `known` is this table's record of the node, `hello` what the node said of itself in its
 * handshake with this one (this node's own identity for records about this node).
 */
export function gossipRefusal(record: Member, from: NodeIdentity, known: Member | undefined, hello: NodeIdentity | undefined): string | undefined {
  if (record.id === from.id) {
    const differs = differsFrom(record, from);
    return differs ? `its own record says ${differs} other than its hello` : undefined;
  }
  if (!known || !hello || record.incarnation !== known.incarnation) return undefined;
  // Just linked to a new life of it whose own record has not come yet: nothing settled to hold to.
  if (differsFrom(known, hello)) return undefined;
  const differs = differsFrom(record, hello);
  if (differs) return `its record of ${hello.name} says ${differs} other than ${hello.name} itself`;
  // A relay may be a round behind the node's own record (a drain took its slots to 0), never above both.
  const most = Math.max(known.slots, hello.slots);
  return record.slots > most ? `its record of ${hello.name} offers ${record.slots} slots; ${hello.name} itself offers ${most}` : undefined;
}

/** The first field that is fixed for a node's life in which a record contradicts a hello; undefined when none does. */
function differsFrom(record: Member, hello: NodeIdentity): string | undefined {
  if (record.name !== hello.name) return `name ${record.name}`;
  if (record.address !== hello.address) return `address ${record.address}`;
  if (!sameList(record.tools, hello.tools)) return `tools [${record.tools.join(", ")}]`;
  if (!sameList(record.capabilities, hello.capabilities)) return `capabilities [${record.capabilities.join(", ")}]`;
  return undefined;
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
