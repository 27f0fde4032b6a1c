import type { StateChart } from "@shoal/protocol";
import type { AnyStateMachine } from "xstate";

interface DefinitionNode {
  id: string;
  key: string;
  type: StateChart["type"];
  initial?: { target?: string[] };
  states?: Record<string, DefinitionNode>;
  transitions?: { eventType: string; target?: string[] }[];
}

/** The chart of a machine from XState's own definition (`machine.toJSON()`), without functions. */
export function stateChartOf(machine: AnyStateMachine): StateChart {
  const walk = (node: DefinitionNode): StateChart => ({
    id: node.id,
    key: node.key,
    type: node.type,
    initial: node.initial?.target?.[0]?.replace(/^#/, "") ?? null,
    transitions: (node.transitions ?? []).map((t) => ({ event: t.eventType, targets: (t.target ?? []).map((x) => x.replace(/^#/, "")) })),
    states: Object.values(node.states ?? {}).map(walk),
  });
  // The definition holds state-node objects that serialise to "#id": go through JSON once.
  return walk(JSON.parse(JSON.stringify(machine.toJSON())) as DefinitionNode);
}
