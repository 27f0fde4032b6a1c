import {
  type Member,
  type Placement,
  type PlannedInstance,
  ShoalError,
  type StepSpec,
  type WorkflowSpec,
  LIMIT_DEFAULTS,
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
  const byStep = new Map<string, PlannedInstance[]>(spec.steps.map((s) => [s.id, []]));
  for (const i of instances) byStep.get(i.step)?.push(i);
  const steps = new Map<string, PlannedStep>();
  for (const s of spec.steps) {
    const logic = (s.tool ?? s.agent) as string;
    steps.set(s.id, { spec: s, logic, deps: deps.get(s.id) ?? [], instances: byStep.get(s.id) ?? [], final: !needed.has(s.id), fanOut: s.for_each !== undefined });
  }
  return { spec, steps, instances };
}

/** How much one workflow may expand into. */
export interface PlanLimits {
  /** Instances of one workflow, fanned-out ones counted (`--max-workflow-instances`). */
  maxInstances: number;
}

/** Waits between instances (see `checkExpansion`) may be this many times `maxInstances`. */
export const DEPENDENCY_FACTOR = 10;
/** Bytes of step input all the instances of a workflow may hold together (each has its copy). */
export const MAX_INSTANCE_INPUT_BYTES = 64 * 1024 * 1024;

/**
 * Checks a workflow spec before anything runs and expands it into instances. Every problem is
 * a SHOAL_ERR_BAD_SPEC naming the step: schema errors (unknown fields included), duplicate ids,
 * unknown `needs`, a `$from` that points nowhere, cycles, unknown tools or agents, and steps no
 * live node can run. What the spec would expand into is counted before it is expanded:
 * SHOAL_ERR_TOO_MANY_INSTANCES or SHOAL_ERR_SPEC_TOO_LARGE naming the step (see `checkExpansion`).
 */
export function planWorkflow(raw: unknown, members: Member[], limits: PlanLimits = { maxInstances: LIMIT_DEFAULTS["max-workflow-instances"] }): Plan {
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
  // Every step is checked and its instances counted before any instance is made: a spec of a
  // few hundred KB could otherwise expand into millions of them (and be stored) first.
  const fanOuts = spec.steps.map((s, i) => fanOutOf(s, i, members, live));
  checkExpansion(spec.steps, fanOuts, deps, limits);
  const steps = new Map<string, PlannedStep>();
  spec.steps.forEach((s, i) => {
    const logic = (s.tool ?? s.agent) as string;
    const placement: Placement = s.placement ?? {};
    const fanOut = fanOuts[i] as FanOut;
    const instances: PlannedInstance[] =
      fanOut.kind === "nodes"
        ? fanOut.nodes.map((node, k) => ({ id: `${s.id}[${k}]`, step: s.id, logic, placement: { ...placement, node } }))
        : fanOut.kind === "items"
          ? fanOut.items.map((item, k) => ({ id: `${s.id}[${k}]`, step: s.id, logic, placement, item }))
          : [{ id: s.id, step: s.id, logic, placement }];
    steps.set(s.id, { spec: s, logic, deps: deps.get(s.id) ?? [], instances, final: !needed.has(s.id), fanOut: s.for_each !== undefined });
  });
  const instances = sorted.order.flatMap((id) => steps.get(id)?.instances ?? []);
  return { spec, steps, instances };
}

/** What a step fans out over: the nodes that match, the items, or nothing (one instance). */
type FanOut = { kind: "nodes"; nodes: string[] } | { kind: "items"; items: unknown[] } | { kind: "one" };
const countOf = (f: FanOut) => (f.kind === "nodes" ? f.nodes.length : f.kind === "items" ? f.items.length : 1);

/** Checks that some live node can run the step and says what it fans out over; makes no instance. */
function fanOutOf(s: StepSpec, i: number, members: Member[], live: Member[]): FanOut {
  const logic = (s.tool ?? s.agent) as string;
  const field = s.tool ? "tool" : "agent";
  if (!members.some((m) => m.tools.includes(logic))) {
    throw bad(`step ${s.id}: no node in the mesh has ${field} "${logic}"`, ["steps", i, field]);
  }
  const placement: Placement = s.placement ?? {};
  const wanted = placement.capabilities ?? [];
  const canRun = (m: Member) => m.tools.includes(logic) && wanted.every((c) => m.capabilities.includes(c)) && m.slots > 0;
  const forEach = s.for_each;
  if (forEach && "nodes" in forEach) {
    const sel = forEach.nodes;
    const nodes = live
      .filter((m) => canRun(m) && (sel.capabilities ?? []).every((c) => m.capabilities.includes(c)) && (!sel.names || sel.names.includes(m.name)))
      .map((m) => m.name)
      .sort();
    if (nodes.length === 0) {
      const what = [sel.capabilities?.length ? `with ${sel.capabilities.join(", ")}` : "", sel.names ? `named ${sel.names.join(", ")}` : ""].filter(Boolean).join(" ");
      throw bad(`step ${s.id}: for_each matches no live node ${what} that can run ${logic}`.replace(/\s+/g, " "), ["steps", i, "for_each", "nodes"]);
    }
    return { kind: "nodes", nodes };
  }
  if (placement.node !== undefined && !live.some((m) => m.name === placement.node && canRun(m))) {
    throw bad(`step ${s.id}: pinned node ${placement.node} is not a live node that can run ${logic}`, ["steps", i, "placement", "node"]);
  }
  if (!live.some(canRun)) {
    throw bad(`step ${s.id}: no live node can run ${logic}${wanted.length ? ` with ${wanted.join(", ")}` : ""}`, ["steps", i, field]);
  }
  if (!forEach) return { kind: "one" };
  if (forEach.items.length === 0) throw bad(`step ${s.id}: for_each.items is empty`, ["steps", i, "for_each", "items"]);
  if (s.input !== undefined && (s.input === null || typeof s.input !== "object" || Array.isArray(s.input))) {
    throw bad(`step ${s.id}: input must be an object to receive for_each items as input.item`, ["steps", i, "input"]);
  }
  return { kind: "items", items: forEach.items };
}

/**
 * What the planned workflow would hold, counted from the spec alone, against its limits: the
 * instances; the waits between them (each instance of a step waits for, and with `$from` gets
 * the outputs of, every instance of each step it needs: a fan-out needing a fan-out is N x M);
 * and the step input copied into each instance's record (kept in memory, the store, the
 * backup's copy and the state format). Each refusal names the step at which the sum went over.
 */
function checkExpansion(specs: StepSpec[], fanOuts: FanOut[], deps: Map<string, string[]>, limits: PlanLimits): void {
  const counts = new Map(specs.map((s, i) => [s.id, countOf(fanOuts[i] as FanOut)]));
  const max = limits.maxInstances;
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  let instances = 0;
  let waits = 0;
  let inputBytes = 0;
  specs.forEach((s, i) => {
    const n = counts.get(s.id) as number;
    instances += n;
    if (instances > max) {
      throw new ShoalError(
        "SHOAL_ERR_TOO_MANY_INSTANCES",
        `step ${s.id}: the workflow would have ${total} instances; it passes the limit of ${max} (--max-workflow-instances) at this step${s.for_each ? `, whose for_each makes ${n}` : ""}`,
        { path: ["steps", i, ...(s.for_each ? ["for_each"] : [])] },
      );
    }
    const needs = deps.get(s.id) ?? [];
    waits += n * needs.reduce((sum, d) => sum + (counts.get(d) ?? 0), 0);
    if (waits > DEPENDENCY_FACTOR * max) {
      throw new ShoalError(
        "SHOAL_ERR_TOO_MANY_INSTANCES",
        `step ${s.id}: its ${n} instances each wait for every instance of ${needs.join(", ")}; that makes ${waits} waits between instances by this step, over the limit of ${DEPENDENCY_FACTOR} x --max-workflow-instances (${DEPENDENCY_FACTOR * max})`,
        { path: ["steps", i, s.needs?.length ? "needs" : "input"] },
      );
    }
    const bytes = s.input === undefined ? 0 : Buffer.byteLength(JSON.stringify(s.input));
    inputBytes += n * bytes;
    if (inputBytes > MAX_INSTANCE_INPUT_BYTES) {
      throw new ShoalError(
        "SHOAL_ERR_SPEC_TOO_LARGE",
        `step ${s.id}: its input (${bytes} bytes) copied into each of its ${n} instances makes ${inputBytes} bytes of instance input by this step, over the ${MAX_INSTANCE_INPUT_BYTES} a workflow may hold`,
        { path: ["steps", i, "input"] },
      );
    }
  });
}
