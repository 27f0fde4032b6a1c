import {
  type Member,
  type Placement,
  type PlannedInstance,
  ShoalError,
  type StepSpec,
  type WorkflowSpec,
  WorkflowSpecSchema,
  describeZodError,
} from "@shoal/protocol";
import { topologicalOrder } from "./dag.js";
import { collectFromRefs } from "./fromRefs.js";

export type { PlannedInstance };

export interface PlannedStep {
  spec: StepSpec;
  logic: string;
  /** Steps whose output it waits for: `needs` plus every `$from`. */
  deps: string[];
  instances: PlannedInstance[];
  /** No other step needs it: its output is part of the result. */
  final: boolean;
  fanOut: boolean;
}

export interface Plan {
  spec: WorkflowSpec;
  steps: Map<string, PlannedStep>;
  /** Instances in a dependency-respecting order. */
  instances: PlannedInstance[];
}

const bad = (message: string, path: (string | number)[]) => new ShoalError("SHOAL_ERR_BAD_SPEC", message, { path });

/** The steps a step waits for: its `needs` and every step a `$from` in its input points to. */
function dependenciesOf(step: StepSpec, froms = collectFromRefs(step.input ?? null, [])): string[] {
  return [...new Set([...(step.needs ?? []), ...froms.map((f) => f.ref.step)])];
}

/**
 * The plan of a workflow accepted earlier (by a node that restarted since): its spec and the
 * instances planned then, without checking them against the mesh of now. A fan-out over nodes
 * stays over the nodes it had.
 */
export function restorePlan(rawSpec: unknown, instances: PlannedInstance[]): Plan {
  const spec = WorkflowSpecSchema.parse(rawSpec);
  const deps = new Map(spec.steps.map((s) => [s.id, dependenciesOf(s)]));
  const needed = new Set([...deps.values()].flat());
  const steps = new Map<string, PlannedStep>();
  for (const s of spec.steps) {
    const logic = (s.tool ?? s.agent) as string;
    steps.set(s.id, { spec: s, logic, deps: deps.get(s.id) ?? [], instances: instances.filter((i) => i.step === s.id), final: !needed.has(s.id), fanOut: s.for_each !== undefined });
  }
  return { spec, steps, instances };
}

/**
 * Checks a workflow spec before anything runs and expands it into instances. Every problem is
 * a SHOAL_ERR_BAD_SPEC naming the step: schema errors (unknown fields included), duplicate ids,
 * unknown `needs`, a `$from` that points nowhere, cycles, unknown tools or agents, and steps no
 * live node can run.
 */
export function planWorkflow(raw: unknown, members: Member[]): Plan {
  const parsed = WorkflowSpecSchema.safeParse(raw);
  if (!parsed.success) {
    const { message, path } = describeZodError(parsed.error);
    const stepIndex = path[0] === "steps" && typeof path[1] === "number" ? path[1] : undefined;
    if (stepIndex === undefined) throw bad(message, path);
    // Inside a step: name the step, then the field within it.
    const stepId = (raw as { steps?: { id?: unknown }[] })?.steps?.[stepIndex]?.id;
    const where = typeof stepId === "string" ? `step ${stepId}` : `step #${stepIndex + 1}`;
    const field = path.slice(2).join(".");
    const issue = parsed.error.issues[0]?.message ?? "invalid";
    throw bad(`${where}: ${field ? `${field}: ` : ""}${issue}`, path);
  }
  const spec = parsed.data;
  const ids = new Set<string>();
  spec.steps.forEach((s, i) => {
    if (ids.has(s.id)) throw bad(`step ${s.id}: the id is used twice`, ["steps", i, "id"]);
    ids.add(s.id);
  });

  const deps = new Map<string, string[]>();
  spec.steps.forEach((s, i) => {
    const needs = s.needs ?? [];
    needs.forEach((n, j) => {
      if (n === s.id) throw bad(`step ${s.id}: needs itself`, ["steps", i, "needs", j]);
      if (!ids.has(n)) throw bad(`step ${s.id}: needs "${n}", which is not a step of this workflow`, ["steps", i, "needs", j]);
    });
    const froms = collectFromRefs(s.input ?? null, ["steps", i, "input"]);
    for (const { ref, at } of froms) {
      if (!ids.has(ref.step)) throw bad(`step ${s.id}: $from "${[ref.step, ...ref.path].join(".")}" points to no step`, [...at, "$from"]);
      if (ref.step === s.id) throw bad(`step ${s.id}: $from points to the step itself`, [...at, "$from"]);
    }
    deps.set(s.id, dependenciesOf(s, froms));
  });
  const sorted = topologicalOrder(deps);
  if ("cycle" in sorted) {
    const first = sorted.cycle[0] as string;
    throw bad(`steps ${sorted.cycle.join(" -> ")} form a cycle`, ["steps", spec.steps.findIndex((s) => s.id === first), "needs"]);
  }

  const needed = new Set([...deps.values()].flat());
  const live = members.filter((m) => m.status === "up");
  const steps = new Map<string, PlannedStep>();
  spec.steps.forEach((s, i) => {
    const logic = (s.tool ?? s.agent) as string;
    const field = s.tool ? "tool" : "agent";
    if (!members.some((m) => m.tools.includes(logic))) {
      throw bad(`step ${s.id}: no node in the mesh has ${field} "${logic}"`, ["steps", i, field]);
    }
    const placement: Placement = s.placement ?? {};
    const wanted = placement.capabilities ?? [];
    const canRun = (m: Member) => m.tools.includes(logic) && wanted.every((c) => m.capabilities.includes(c)) && m.slots > 0;
    let instances: PlannedInstance[];
    const forEach = s.for_each;
    if (forEach && "nodes" in forEach) {
      const sel = forEach.nodes;
      const matched = live
        .filter((m) => canRun(m) && (sel.capabilities ?? []).every((c) => m.capabilities.includes(c)) && (!sel.names || sel.names.includes(m.name)))
        .map((m) => m.name)
        .sort();
      if (matched.length === 0) {
        const what = [sel.capabilities?.length ? `with ${sel.capabilities.join(", ")}` : "", sel.names ? `named ${sel.names.join(", ")}` : ""].filter(Boolean).join(" ");
        throw bad(`step ${s.id}: for_each matches no live node ${what} that can run ${logic}`.replace(/\s+/g, " "), ["steps", i, "for_each", "nodes"]);
      }
      instances = matched.map((node, k) => ({ id: `${s.id}[${k}]`, step: s.id, logic, placement: { ...placement, node } }));
    } else {
      if (placement.node !== undefined && !live.some((m) => m.name === placement.node && canRun(m))) {
        throw bad(`step ${s.id}: pinned node ${placement.node} is not a live node that can run ${logic}`, ["steps", i, "placement", "node"]);
      }
      if (!live.some(canRun)) {
        throw bad(`step ${s.id}: no live node can run ${logic}${wanted.length ? ` with ${wanted.join(", ")}` : ""}`, ["steps", i, field]);
      }
      if (forEach && "items" in forEach) {
        if (forEach.items.length === 0) throw bad(`step ${s.id}: for_each.items is empty`, ["steps", i, "for_each", "items"]);
        if (s.input !== undefined && (s.input === null || typeof s.input !== "object" || Array.isArray(s.input))) {
          throw bad(`step ${s.id}: input must be an object to receive for_each items as input.item`, ["steps", i, "input"]);
        }
        instances = forEach.items.map((item, k) => ({ id: `${s.id}[${k}]`, step: s.id, logic, placement, item }));
      } else {
        instances = [{ id: s.id, step: s.id, logic, placement }];
      }
    }
    steps.set(s.id, { spec: s, logic, deps: deps.get(s.id) ?? [], instances, final: !needed.has(s.id), fanOut: forEach !== undefined });
  });
  const instances = sorted.order.flatMap((id) => steps.get(id)?.instances ?? []);
  return { spec, steps, instances };
}
