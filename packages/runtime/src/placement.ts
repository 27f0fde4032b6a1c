import { type Member, type Placement, type PlacementDecision, ShoalError } from "@shoal/protocol";

export interface PlacementRequest {
  logic: string;
  placement: Placement;
  /** This node's id, for `prefer: "local"`. */
  selfId: string;
  /** Slots this spawner has taken per node that gossip may not show yet. */
  reserved: ReadonlyMap<string, number>;
  /** Actors of the same logic this spawner already has per node, for `spread`. */
  sameLogic: ReadonlyMap<string, number>;
  /** Nodes not to use: the one an actor is leaving. */
  exclude?: ReadonlySet<string>;
  /** Nodes that refused this actor for being at a limit (SHOAL_ERR_OVERLOADED), with what they said. */
  refused?: ReadonlyMap<string, string>;
}

/** Why an actor went where it went (PlacementDecision, kept for devtools and the API), or why it waits or fails. */
export type PlacementResult = { kind: "placed"; decision: PlacementDecision } | { kind: "wait"; why: string } | { kind: "fail"; error: ShoalError };

/**
 * Picks a node: first the nodes that may run the logic (up, hosting it, with the capabilities,
 * the pinned one if any, not one that refused it for a limit), then among those with a free
 * slot, by strategy. No free slot anywhere means wait; no eligible node at all means fail
 * (SHOAL_ERR_OVERLOADED when the nodes that could run it refused it for their limits).
 */
export function choosePlacement(members: Member[], req: PlacementRequest): PlacementResult {
  const rejected: { node: string; why: string }[] = [];
  const wanted = req.placement.capabilities ?? [];
  const eligible: Member[] = [];
  for (const m of members) {
    const why =
      req.placement.node !== undefined && m.name !== req.placement.node
        ? "not the pinned node"
        : m.status !== "up"
          ? `status ${m.status}`
          : req.exclude?.has(m.id)
            ? "being left"
            : req.refused?.has(m.id)
              ? `refused it: ${req.refused.get(m.id)}`
              : !m.tools.includes(req.logic)
                ? `does not host ${req.logic}`
                : wanted.find((c) => !m.capabilities.includes(c))
                  ? `lacks capability ${wanted.find((c) => !m.capabilities.includes(c))}`
                  : m.slots === 0
                    ? "no slots (draining or compute-less)"
                    : undefined;
    if (why === undefined) eligible.push(m);
    else if (req.placement.node === undefined || m.name === req.placement.node) rejected.push({ node: m.name, why });
  }
  if (eligible.length === 0) {
    if (!members.some((m) => m.tools.includes(req.logic))) {
      return { kind: "fail", error: new ShoalError("SHOAL_ERR_UNKNOWN_LOGIC", `no node in the mesh hosts logic "${req.logic}"`) };
    }
    const pinned = req.placement.node;
    const reason = pinned
      ? `pinned node ${pinned} cannot run ${req.logic}: ${rejected[0]?.why ?? "not in the mesh"}`
      : `no up node hosts ${req.logic}${wanted.length ? ` with ${wanted.join(", ")}` : ""}`;
    // A pinned node that is only suspect may come back; anything else will not fix itself.
    if (pinned && rejected[0]?.why === "status suspect") return { kind: "wait", why: reason };
    const refusals = members.filter((m) => req.refused?.has(m.id) && (pinned === undefined || m.name === pinned));
    if (refusals.length > 0) {
      // The nodes that could run it are at a limit: say so, with the flag each one named.
      const why = refusals.map((m) => req.refused?.get(m.id)).join("; ");
      return { kind: "fail", error: new ShoalError("SHOAL_ERR_OVERLOADED", `no node can take another ${req.logic} actor now: ${why}`, { retryAfterMs: 1_000 }) };
    }
    return { kind: "fail", error: new ShoalError("SHOAL_ERR_NO_NODE", reason) };
  }
  const used = (m: Member) => Math.max(m.running, 0) + (req.reserved.get(m.id) ?? 0);
  const free = eligible.filter((m) => used(m) < m.slots);
  for (const m of eligible) if (!free.includes(m)) rejected.push({ node: m.name, why: `all ${m.slots} slots busy` });
  if (free.length === 0) return { kind: "wait", why: `all slots busy on ${eligible.map((m) => m.name).join(", ")}` };

  const strategy = req.placement.node ? "pinned" : (req.placement.prefer ?? "least_loaded");
  const load = (m: Member) => used(m) / m.slots;
  const byLoad = (a: Member, b: Member) => load(a) - load(b) || used(a) - used(b) || a.name.localeCompare(b.name);
  let chosen: Member;
  let why: string;
  if (strategy === "local" && free.some((m) => m.id === req.selfId)) {
    chosen = free.find((m) => m.id === req.selfId) as Member;
    why = "local node has a free slot";
  } else if (strategy === "spread") {
    const count = (m: Member) => req.sameLogic.get(m.id) ?? 0;
    chosen = [...free].sort((a, b) => count(a) - count(b) || byLoad(a, b))[0] as Member;
    why = `fewest ${req.logic} actors from this spawner (${count(chosen)}), then least loaded`;
  } else {
    chosen = [...free].sort(byLoad)[0] as Member;
    why = strategy === "pinned" ? "pinned" : `least loaded (${used(chosen)}/${chosen.slots} slots busy)`;
  }
  return {
    kind: "placed",
    decision: { nodeId: chosen.id, nodeName: chosen.name, strategy, eligible: eligible.map((m) => m.name), rejected, why },
  };
}
