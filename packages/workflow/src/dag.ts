/**
 * Topological order of a dependency graph (`deps` maps a node to what it waits for), or the
 * nodes of one cycle when there is one.
 */
export function topologicalOrder(deps: ReadonlyMap<string, readonly string[]>): { order: string[] } | { cycle: string[] } {
  const state = new Map<string, "visiting" | "done">();
  const order: string[] = [];
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    const s = state.get(node);
    if (s === "done") return undefined;
    if (s === "visiting") return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, "visiting");
    stack.push(node);
    for (const dep of deps.get(node) ?? []) {
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, "done");
    order.push(node);
    return undefined;
  };
  for (const node of deps.keys()) {
    const cycle = visit(node);
    if (cycle) return { cycle };
  }
  return { order };
}
