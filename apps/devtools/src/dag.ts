import type { WorkflowState } from "@shoal/protocol";

export interface LaidOutStep {
  id: string;
  x: number;
  y: number;
}

export const BOX = { w: 170, h: 46, gapX: 70, gapY: 16 };

/** Step id of an instance: `analyze[1]` belongs to `analyze`. */
export const stepOf = (instance: string) => instance.replace(/\[\d+\]$/, "");

/**
 * Layers by longest path from the steps that need nothing; the instances of a fan-out sit in one
 * column, one under the other. Edges go from every instance of a needed step to every instance
 * of the step that needs it.
 */
export function layout(state: WorkflowState): { boxes: LaidOutStep[]; edges: [string, string][]; width: number; height: number } {
  const instances = Object.entries(state.steps);
  const needsOf = new Map<string, string[]>();
  for (const [id, s] of instances) needsOf.set(stepOf(id), s.needs);
  const layer = new Map<string, number>();
  const depth = (step: string, seen = new Set<string>()): number => {
    const known = layer.get(step);
    if (known !== undefined) return known;
    if (seen.has(step)) return 0;
    seen.add(step);
    const d = Math.max(-1, ...(needsOf.get(step) ?? []).map((n) => depth(n, seen))) + 1;
    layer.set(step, d);
    return d;
  };
  const rows = new Map<number, number>();
  const boxes = instances.map(([id]) => {
    const col = depth(stepOf(id));
    const row = rows.get(col) ?? 0;
    rows.set(col, row + 1);
    return { id, x: 20 + col * (BOX.w + BOX.gapX), y: 20 + row * (BOX.h + BOX.gapY) };
  });
  const edges: [string, string][] = [];
  for (const [id, s] of instances) {
    for (const need of s.needs) for (const [from] of instances) if (stepOf(from) === need) edges.push([from, id]);
  }
  const width = Math.max(...boxes.map((b) => b.x)) + BOX.w + 20;
  const height = Math.max(...boxes.map((b) => b.y)) + BOX.h + 20;
  return { boxes, edges, width, height };
}
