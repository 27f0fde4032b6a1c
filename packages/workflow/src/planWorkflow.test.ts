import type { Member } from "@shoal/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { topologicalOrder } from "./dag.js";
import { collectFromRefs, resolveFromRefs } from "./fromRefs.js";
import { planWorkflow } from "./planWorkflow.js";

const member = (name: string, over: Partial<Member> = {}): Member => ({
  id: `id-${name}`,
  name,
  address: "127.0.0.1:1",
  capabilities: [],
  tools: ["echo", "vision_agent", "summarize"],
  slots: 2,
  incarnation: 0,
  status: "up",
  running: 0,
  ...over,
});
const mesh = [member("edge-01", { capabilities: ["camera"] }), member("edge-02", { capabilities: ["camera"] }), member("gpu-01", { capabilities: ["gpu"], tools: ["echo", "summarize"] })];
const wf = (steps: unknown[], extra: object = {}) => ({ name: "w", steps, ...extra });

describe("planWorkflow: good specs", () => {
  it("expands for_each over nodes into pinned instances and marks final steps", () => {
    const plan = planWorkflow(
      wf([
        { id: "analyze", tool: "vision_agent", for_each: { nodes: { capabilities: ["camera"] } }, input: { frames: 3 } },
        { id: "summarize", tool: "summarize", input: { context: { $from: "analyze" } } },
      ]),
      mesh,
    );
    expect(plan.instances.map((i) => [i.id, i.placement.node])).toEqual([
      ["analyze[0]", "edge-01"],
      ["analyze[1]", "edge-02"],
      ["summarize", undefined],
    ]);
    expect(plan.steps.get("summarize")).toMatchObject({ deps: ["analyze"], final: true });
    expect(plan.steps.get("analyze")).toMatchObject({ final: false, fanOut: true });
  });
});

describe("planWorkflow: bad specs are refused, naming the step and the problem", () => {
  const cases: [string, unknown, RegExp, (string | number)[]?][] = [
    ["not an object", 42, /expected object/],
    ["no steps", { name: "w", steps: [] }, /steps/],
    ["no name", { steps: [{ id: "a", tool: "echo" }] }, /name/],
    ["an unknown top-level field", wf([{ id: "a", tool: "echo" }], { colour: "blue" }), /Unrecognized key.*colour/],
    ["an unknown step field", wf([{ id: "a", tool: "echo", retry: 3 }]), /step a: .*retry/, ["steps", 0]],
    ["neither tool nor agent", wf([{ id: "a" }]), /step a: tool: a step runs exactly one of tool or agent/, ["steps", 0, "tool"]],
    ["both tool and agent", wf([{ id: "a", tool: "echo", agent: "echo" }]), /step a: .*exactly one/],
    ["a bad step id", wf([{ id: "a.b", tool: "echo" }]), /step a\.b: .*letters/],
    ["a duplicate id", wf([{ id: "a", tool: "echo" }, { id: "a", tool: "echo" }]), /step a: the id is used twice/, ["steps", 1, "id"]],
    ["unknown needs", wf([{ id: "a", tool: "echo", needs: ["ghost"] }]), /step a: needs "ghost", which is not a step/, ["steps", 0, "needs", 0]],
    ["a step that needs itself", wf([{ id: "a", tool: "echo", needs: ["a"] }]), /step a: needs itself/],
    ["a $from that points nowhere", wf([{ id: "a", tool: "echo", input: { x: [{ $from: "ghost.field" }] } }]), /step a: \$from "ghost.field" points to no step/, ["steps", 0, "input", "x", 0, "$from"]],
    ["a cycle through needs", wf([{ id: "a", tool: "echo", needs: ["b"] }, { id: "b", tool: "echo", needs: ["a"] }]), /steps a -> b -> a form a cycle/],
    ["a cycle through $from", wf([{ id: "a", tool: "echo", input: { $from: "c" } }, { id: "b", tool: "echo", needs: ["a"] }, { id: "c", tool: "echo", needs: ["b"] }]), /form a cycle/],
    ["an unknown tool", wf([{ id: "a", tool: "teleport" }]), /step a: no node in the mesh has tool "teleport"/, ["steps", 0, "tool"]],
    ["an unknown agent", wf([{ id: "a", agent: "ghost_agent" }]), /step a: no node in the mesh has agent "ghost_agent"/],
    ["no node with the capability", wf([{ id: "a", tool: "echo", placement: { capabilities: ["lidar"] } }]), /step a: no live node can run echo with lidar/],
    ["a pinned node that is not there", wf([{ id: "a", tool: "echo", placement: { node: "edge-99" } }]), /step a: pinned node edge-99 is not a live node/],
    ["for_each over no matching node", wf([{ id: "a", tool: "vision_agent", for_each: { nodes: { capabilities: ["thermal"] } } }]), /step a: for_each matches no live node with thermal/],
    ["for_each over empty items", wf([{ id: "a", tool: "echo", for_each: { items: [] } }]), /step a: for_each.items is empty/],
    ["for_each items with a non-object input", wf([{ id: "a", tool: "echo", for_each: { items: [1] }, input: "x" }]), /input must be an object/],
    ["a negative timeout", wf([{ id: "a", tool: "echo", timeout_ms: -5 }]), /step a: timeout_ms/],
    ["too many retries", wf([{ id: "a", tool: "echo", retries: 99 }]), /step a: retries/],
    ["a bad on_missing", wf([{ id: "a", tool: "echo", on_missing: "maybe" }]), /step a: on_missing/],
    ["a bad placement strategy", wf([{ id: "a", tool: "echo", placement: { prefer: "random" } }]), /step a: placement\.prefer/],
    ["max_parallel of zero", wf([{ id: "a", tool: "echo" }], { max_parallel: 0 }), /max_parallel/],
    ["a notify url that is not http", wf([{ id: "a", tool: "echo" }], { notify: { url: "ftp://x" } }), /notify\.url/],
  ];
  it.each(cases)("%s", (_what, spec, message, path) => {
    let err: unknown;
    try {
      planWorkflow(spec, mesh);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "SHOAL_ERR_BAD_SPEC", message: expect.stringMatching(message) });
    if (path) expect((err as { path: unknown[] }).path).toEqual(path);
  });

  it("refuses a step whose only capable node is down", () => {
    const down = [member("edge-01", { capabilities: ["camera"], status: "down" }), member("gpu-01")];
    expect(() => planWorkflow(wf([{ id: "a", tool: "vision_agent", placement: { capabilities: ["camera"] } }]), down)).toThrow(/no live node can run vision_agent/);
  });
});

describe("planWorkflow: what a spec would expand into is counted before anything is made", () => {
  const items = (n: number) => Array.from({ length: n }, (_, k) => k);
  const refused = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return err as { code: string; message: string; path: unknown[] };
    }
    throw new Error("the spec was accepted");
  };

  it("refuses the poison spec (20 steps x 10,000 items) at its first step, quickly, naming the limit and its flag", () => {
    const spec = wf(Array.from({ length: 20 }, (_, i) => ({ id: `s${i}`, tool: "echo", for_each: { items: items(10_000) } })));
    expect(JSON.stringify(spec).length).toBeGreaterThan(400_000);
    const start = performance.now();
    const err = refused(() => planWorkflow(spec, mesh));
    expect(performance.now() - start).toBeLessThan(500);
    expect(err).toMatchObject({ code: "SHOAL_ERR_TOO_MANY_INSTANCES", path: ["steps", 0, "for_each"] });
    expect(err.message).toMatch(/^step s0: the workflow would have 200000 instances; it passes the limit of 5000 \(--max-workflow-instances\) at this step, whose for_each makes 10000$/);
  });

  it("accepts exactly the limit and names the step whose instances pass it, counting nodes matched too (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 150 }), (sizes, max) => {
        // 0 stands for a fan-out over the two camera nodes; others are item lists of that size.
        const steps = sizes.map((n, i) => (n === 0 ? { id: `s${i}`, tool: "vision_agent", for_each: { nodes: { capabilities: ["camera"] } } } : { id: `s${i}`, tool: "echo", for_each: { items: items(n) } }));
        const counts = sizes.map((n) => (n === 0 ? 2 : n));
        const over = counts.findIndex((_, i) => counts.slice(0, i + 1).reduce((a, b) => a + b, 0) > max);
        const plan = () => planWorkflow(wf(steps), mesh, { maxInstances: max });
        if (over === -1) expect(plan().instances).toHaveLength(counts.reduce((a, b) => a + b, 0));
        else expect(refused(plan)).toMatchObject({ code: "SHOAL_ERR_TOO_MANY_INSTANCES", path: ["steps", over, "for_each"], message: expect.stringMatching(new RegExp(`^step s${over}: .*limit of ${max} \\(--max-workflow-instances\\)`)) });
      }),
    );
  });

  it("a step without for_each that passes the limit is named too", () => {
    const err = refused(() => planWorkflow(wf([{ id: "a", tool: "echo", for_each: { items: items(3) } }, { id: "b", tool: "echo" }]), mesh, { maxInstances: 3 }));
    expect(err).toMatchObject({ code: "SHOAL_ERR_TOO_MANY_INSTANCES", path: ["steps", 1], message: expect.stringMatching(/^step b: the workflow would have 4 instances/) });
  });

  it("counts the waits between instances: a fan-out that needs a fan-out is N x M, bounded by 10 x the limit", () => {
    const pair = (n: number, m: number, link: object) => wf([{ id: "a", tool: "echo", for_each: { items: items(n) } }, { id: "b", tool: "echo", for_each: { items: items(m) }, ...link }]);
    expect(planWorkflow(pair(100, 100, { needs: ["a"] }), mesh, { maxInstances: 1_000 }).instances).toHaveLength(200); // 10,000 waits
    expect(refused(() => planWorkflow(pair(101, 100, { needs: ["a"] }), mesh, { maxInstances: 1_000 }))).toMatchObject({
      code: "SHOAL_ERR_TOO_MANY_INSTANCES",
      path: ["steps", 1, "needs"],
      message: expect.stringMatching(/^step b: its 100 instances each wait for every instance of a; that makes 10100 waits .*10 x --max-workflow-instances \(10000\)/),
    });
    // A $from waits the same way (and hands each instance all the outputs).
    expect(refused(() => planWorkflow(pair(101, 100, { input: { all: { $from: "a" } } }), mesh, { maxInstances: 1_000 }))).toMatchObject({ code: "SHOAL_ERR_TOO_MANY_INSTANCES", path: ["steps", 1, "input"] });
    // Fanning in is what aggregation does: one instance waiting for the whole fan-out is cheap.
    expect(planWorkflow(wf([{ id: "a", tool: "echo", for_each: { items: items(900) } }, { id: "b", tool: "echo", input: { all: { $from: "a" } } }]), mesh, { maxInstances: 1_000 }).instances).toHaveLength(901);
  });

  it("refuses a step input that each of many instances would copy past 64 MiB, naming the step", () => {
    const input = { blob: "x".repeat(20_000) };
    expect(planWorkflow(wf([{ id: "big", tool: "echo", input, for_each: { items: items(3_000) } }]), mesh).instances).toHaveLength(3_000);
    expect(refused(() => planWorkflow(wf([{ id: "big", tool: "echo", input, for_each: { items: items(3_400) } }]), mesh))).toMatchObject({
      code: "SHOAL_ERR_SPEC_TOO_LARGE",
      path: ["steps", 0, "input"],
      message: expect.stringMatching(/^step big: its input \(20011 bytes\) copied into each of its 3400 instances makes 68037400 bytes/),
    });
  });
});

describe("topologicalOrder (property)", () => {
  it("orders every node after what it depends on, for any DAG", () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.nat(), { maxLength: 4 }), { minLength: 1, maxLength: 30 }), (lists) => {
        // Edges only to lower indices: a DAG by construction.
        const deps = new Map(lists.map((l, i) => [`n${i}`, i === 0 ? [] : [...new Set(l.map((d) => `n${d % i}`))]]));
        const result = topologicalOrder(deps);
        expect("order" in result).toBe(true);
        if (!("order" in result)) return;
        const pos = new Map(result.order.map((n, i) => [n, i]));
        expect(result.order).toHaveLength(deps.size);
        for (const [n, ds] of deps) for (const d of ds) expect(pos.get(d)).toBeLessThan(pos.get(n) as number);
      }),
    );
  });

  it("finds a real cycle whenever one edge points forward into the chain", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 20 }), fc.nat(), (n, k) => {
        const deps = new Map(Array.from({ length: n }, (_, i) => [`n${i}`, i === 0 ? [] : [`n${i - 1}`]]));
        const from = k % n;
        deps.set("n0", [`n${from === 0 ? n - 1 : from}`]);
        const result = topologicalOrder(deps);
        expect("cycle" in result).toBe(true);
        if (!("cycle" in result)) return;
        const cycle = result.cycle;
        expect(cycle[0]).toBe(cycle.at(-1));
        for (let i = 0; i < cycle.length - 1; i++) expect(deps.get(cycle[i] as string)).toContain(cycle[i + 1]);
      }),
    );
  });
});

describe("$from", () => {
  it("resolves nested references and paths, null for what does not exist", () => {
    const outputs = new Map<string, unknown>([
      ["a", { x: { y: [10, 20] } }],
      ["b", [1, 2]],
    ]);
    const input = { keep: 1, deep: [{ $from: "a.x.y.1" }], whole: { $from: "b" }, missing: { $from: "c" }, bad: { $from: "a.nope.z" } };
    expect(resolveFromRefs(input, outputs)).toEqual({ keep: 1, deep: [20], whole: [1, 2], missing: null, bad: null });
    expect(collectFromRefs(input).map((r) => r.ref.step)).toEqual(["a", "b", "c", "a"]);
  });

  it("leaves inputs without references unchanged (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const clean = JSON.parse(JSON.stringify(v).replaceAll('"$from"', '"from"'));
        expect(resolveFromRefs(clean, new Map())).toEqual(clean);
      }),
    );
  });
});
