import type { Member, NodeIdentity } from "@shoal/protocol";

/**
 * Why a gossiped record breaks "a node speaks only for itself", or undefined when the table may
 * merge it. What a node is (name, address, tools, capabilities) and the most slots it offers
 * are what it said in its hello, which the handshake authenticated: its own record must agree,
 * and so must a third party's record of it at the incarnation known here (a third party may mark
 * it suspect or down, and its load is never taken second-hand). A record of a node this one has
 * no link to, or at another incarnation, cannot be checked against a hello: the table's rules
 * apply (a stranger is taken at incarnation 0 until it speaks for itself, a higher incarnation
 * only from the node itself), and neither can one while the table's own record of the node is
 * not yet what its hello says (a new life, linked a moment before its own record arrives).
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
  return differs ? `its record of ${hello.name} says ${differs} other than ${hello.name} itself` : undefined;
}

/** The first field in which a record contradicts a hello, described; undefined when none does. */
function differsFrom(record: Member, hello: NodeIdentity): string | undefined {
  if (record.name !== hello.name) return `name ${record.name}`;
  if (record.address !== hello.address) return `address ${record.address}`;
  if (!sameList(record.tools, hello.tools)) return `tools [${record.tools.join(", ")}]`;
  if (!sameList(record.capabilities, hello.capabilities)) return `capabilities [${record.capabilities.join(", ")}]`;
  // Slots only go down in a node's life (to 0 while it drains).
  if (record.slots > hello.slots) return `${record.slots} slots, more than its ${hello.slots}`;
  return undefined;
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
