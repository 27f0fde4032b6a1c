import { eventually } from "@shoal/transport/testing";
import { afterEach, describe, expect, it } from "vitest";
import { assign, createActor, createMachine, toPromise } from "xstate";
import { type Logger, monotonicNow } from "@shoal/protocol";
import { type RuntimeNode, converged, releaseSlow, releaseSlowOn, runs, startRuntimeNode } from "./testing/cluster.js";

/** Keeps warnings (and worse) in memory; drops the rest. */
function recordingLogger(sink: { obj: unknown; msg: string | undefined }[]): Logger {
  const keep = (obj: unknown, msg?: string) => void sink.push({ obj, msg });
  const drop = () => {};
  const logger = { fatal: keep, error: keep, warn: keep, info: drop, debug: drop, trace: drop, child: () => logger };
  return logger as unknown as Logger;
}

const nodes: RuntimeNode[] = [];
async function cluster(specs: { name: string; capabilities?: string[]; slots?: number; maxActors?: number }[]) {
  const started: RuntimeNode[] = [];
  for (const spec of specs) {
    const seed = started[0];
    const n = await startRuntimeNode(spec.name, { ...spec, seeds: seed ? [seed.node.address] : [] });
    started.push(n);
    nodes.push(n);
  }
  await converged(started);
  return started;
}
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
  runs.length = 0;
});

describe("Runtime: spawning and messaging", () => {
  it("spawns a machine on another node and drives it through a location-transparent ref", async () => {
    const [a] = await cluster([{ name: "a", slots: 0 }, { name: "b" }]);
    const ref = a!.runtime.spawn("counter", { start: 5 });
    await ref.send({ type: "INC" });
    const view = await ref.ask({ type: "INC" });
    expect(view).toMatchObject({ status: "active", value: "counting", context: { count: 7 } });
    expect(ref.address).toMatch(/^b\/a~/);
    await ref.send({ type: "DONE" });
    await expect(ref.done).resolves.toBe(7);
  });

  it("routes to an actor by id from any node, through its supervisor", async () => {
    const [a, , c] = await cluster([{ name: "a", slots: 0 }, { name: "b" }, { name: "c", slots: 0 }]);
    const ref = a!.runtime.spawn("counter", {});
    await ref.send({ type: "INC" });
    const fromC = c!.runtime.ref(ref.id);
    expect(await fromC.ask({ type: "INC" })).toMatchObject({ context: { count: 2 } });
    const described = await c!.runtime.describe(ref.id);
    expect(described).toMatchObject({ id: ref.id, status: "running", node: "b", epoch: 1, placement: { nodeName: "b", strategy: "least_loaded" } });
  });

  it("runs promise actors and reports their output or their error", async () => {
    const [a] = await cluster([{ name: "a" }, { name: "b" }]);
    await expect(a!.runtime.spawn("double", { n: 21 }).done).resolves.toBe(42);
    await expect(a!.runtime.spawn("fail", {}).done).rejects.toMatchObject({ code: "SHOAL_ERR_ACTOR_FAILED", message: "tool broke" });
  });

  it("places by capability and refuses logic that no node can host", async () => {
    const [a] = await cluster([{ name: "a" }, { name: "cam", capabilities: ["camera"] }]);
    await expect(a!.runtime.spawn("camera-only", {}).done).resolves.toBe("cam");
    await expect(a!.runtime.spawn("camera-only", {}, { placement: { capabilities: ["gpu"] } }).done).rejects.toMatchObject({ code: "SHOAL_ERR_NO_NODE" });
    await expect(a!.runtime.spawn("nope", {}).done).rejects.toMatchObject({ code: "SHOAL_ERR_UNKNOWN_LOGIC", message: /nope/ });
    await expect(a!.runtime.spawn("double", {}, { placement: { node: "ghost" } }).done).rejects.toMatchObject({ code: "SHOAL_ERR_NO_NODE" });
  });

  it("gives typed errors for bad input, unknown and stopped actors", async () => {
    const [a, b] = await cluster([{ name: "a", slots: 0 }, { name: "b" }]);
    await expect(a!.runtime.spawn("double", { n: "x" }).done).rejects.toMatchObject({ code: "SHOAL_ERR_BAD_INPUT", path: ["input", "n"] });
    await expect(a!.runtime.spawn("bad-output", {}).done).rejects.toMatchObject({ code: "SHOAL_ERR_BAD_OUTPUT", message: /bad-output/ });
    await expect(a!.runtime.send("a~nothing", { type: "X" })).rejects.toMatchObject({ code: "SHOAL_ERR_UNKNOWN_ACTOR" });
    await expect(b!.runtime.send("a~nothing", { type: "X" })).rejects.toMatchObject({ code: "SHOAL_ERR_UNKNOWN_ACTOR" });
    const ref = a!.runtime.spawn("counter", {});
    await ref.ask({ type: "INC" });
    await ref.stop();
    await expect(ref.send({ type: "INC" })).rejects.toMatchObject({ code: "SHOAL_ERR_ACTOR_STOPPED" });
    await expect(ref.done).rejects.toMatchObject({ code: "SHOAL_ERR_ACTOR_STOPPED" });
    expect(b!.runtime.list()).toHaveLength(0);
    // An ask over a slow link: test/chaos/runtimeLinks.test.ts (through a TCP proxy).
  });
});

describe("Runtime: slots and placement", () => {
  it("never runs more actors on a node than its slots; the rest wait in a FIFO queue", async () => {
    const [a, b, c] = await cluster([{ name: "a", slots: 2 }, { name: "b", slots: 3 }, { name: "c", slots: 1 }]);
    const peak = new Map<string, number>();
    for (const n of [a!, b!, c!]) {
      n.runtime.host.on("running", (count) => peak.set(n.name, Math.max(peak.get(n.name) ?? 0, count)));
    }
    const refs = Array.from({ length: 50 }, (_, i) => a!.runtime.spawn("sleep", { ms: 20 + (i % 5) }));
    await eventually(() => a!.runtime.supervisor.pending().length > 0);
    const outputs = await Promise.all(refs.map((r) => r.done));
    expect(outputs).toHaveLength(50);
    expect(peak.get("a")).toBeLessThanOrEqual(2);
    expect(peak.get("b")).toBeLessThanOrEqual(3);
    expect(peak.get("c")).toBeLessThanOrEqual(1);
    expect(new Set(outputs)).toEqual(new Set(["a", "b", "c"]));
  });

  it("a node at its --max-actors refuses a spawn: the actor goes to another node, or fails with SHOAL_ERR_OVERLOADED when none is left", async () => {
    const [a, b, c] = await cluster([{ name: "a", slots: 0 }, { name: "b", slots: 10, maxActors: 2 }, { name: "c", slots: 10, maxActors: 1 }]);
    // Least loaded by slots would put them all on b and c in turn; the limits send the rest on.
    const placed = await Promise.all([1, 2, 3].map(() => a!.runtime.start("counter", {})));
    expect(placed.map((r) => r.record?.status)).toEqual(["running", "running", "running"]);
    expect([b!.runtime.list().length, c!.runtime.list().length]).toEqual([2, 1]);
    const refused = await a!.runtime.start("counter", {}).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toMatchObject({ code: "SHOAL_ERR_OVERLOADED", retryAfterMs: 1_000, message: expect.stringMatching(/^no node can take another counter actor now: .*--max-actors 2.*--max-actors 1|^no node can take another counter actor now: .*--max-actors 1.*--max-actors 2/) });
    // A place that frees up is used again.
    await placed[0]?.send({ type: "DONE" });
    await placed[0]?.done;
    await eventually(() => b!.runtime.list().length + c!.runtime.list().length === 2);
    expect((await a!.runtime.start("counter", {})).record?.status).toBe("running");
  });

  it("a node refuses to supervise more API-started actors than its --max-actors", async () => {
    const [a] = await cluster([{ name: "a", slots: 0, maxActors: 2 }, { name: "b", slots: 1 }]);
    const first = await a!.runtime.start("counter", {});
    await a!.runtime.start("counter", {}); // waits for b's only slot
    expect(a!.runtime.supervisor.pending()).toHaveLength(1);
    await expect(a!.runtime.start("counter", {})).rejects.toMatchObject({ code: "SHOAL_ERR_OVERLOADED", message: "a already supervises 2 actors, its maximum (--max-actors 2)" });
    await first.send({ type: "DONE" });
    await first.done;
    await eventually(() => a!.runtime.supervisor.active === 1);
    await a!.runtime.start("counter", {});
  });

  it("spread puts actors of one logic on different nodes", async () => {
    const [a] = await cluster([{ name: "a" }, { name: "b" }, { name: "c" }]);
    const refs = [1, 2, 3].map(() => a!.runtime.spawn("counter", {}, { placement: { prefer: "spread" } }));
    await Promise.all(refs.map((r) => r.ask({ type: "INC" })));
    expect(new Set(refs.map((r) => r.address.split("/")[0]))).toEqual(new Set(["a", "b", "c"]));
  });
});

describe("Runtime: failure and migration", () => {
  it("resumes a machine from its last checkpoint on another node when its node crashes", async () => {
    const [a, b, c] = await cluster([{ name: "a", slots: 0 }, { name: "b" }, { name: "c" }]);
    const ref = a!.runtime.spawn("counter", {}, { placement: { node: "b" } });
    for (let i = 0; i < 5; i++) await ref.send({ type: "INC" });
    expect(ref.address).toMatch(/^b\//);
    // Unpin it so that it may move, as a step with capabilities would.
    (ref.record as { placement: object }).placement = {};
    await b!.crash();
    await eventually(() => ref.address.startsWith("c/"), 5_000);
    expect(await ref.ask({ type: "INC" })).toMatchObject({ context: { count: 6 } });
    const d = await a!.runtime.describe(ref.id);
    expect(d).toMatchObject({ epoch: 2, migrations: 1, node: "c" });
    expect(d.history.map((h) => h.node)).toEqual(["b", "c"]);
    expect(c!.runtime.list()[0]).toMatchObject({ id: ref.id, state: "counting", epoch: 2 });
  });

  it("keeps messages sent while the actor moves and delivers them after", async () => {
    const [a, b] = await cluster([{ name: "a", slots: 0 }, { name: "b" }, { name: "c" }]);
    const ref = a!.runtime.spawn("counter", {}, { placement: { prefer: "least_loaded" } });
    await ref.ask({ type: "INC" });
    const host = ref.address.startsWith("b/") ? b! : nodes.find((n) => ref.address.startsWith(`${n.name}/`))!;
    await host.crash();
    const sends = [ref.send({ type: "INC" }), ref.send({ type: "INC" })];
    await Promise.all(sends);
    expect((await ref.ask({ type: "INC" })).context).toMatchObject({ count: 4 });
  });

  it("restores a pending `after` delay on the new node, for the time it had left", async () => {
    const [a, b] = await cluster([{ name: "a", slots: 0 }, { name: "b" }, { name: "c" }]);
    const ref = a!.runtime.spawn("delayed", {}, { placement: { prefer: "least_loaded" } });
    await eventually(() => ref.record?.status === "running" && ref.record.checkpoint !== undefined);
    const started = Date.now();
    const host = nodes.find((n) => ref.address.startsWith(`${n.name}/`))!;
    expect(host.runtime.list()[0]?.state).toBe("waiting");
    await host.crash();
    await eventually(() => ref.getSnapshot()?.value === "fired", 3_000);
    const firedAfter = Date.now() - started;
    expect(firedAfter).toBeGreaterThanOrEqual(400); // not fired at once on restore
    expect(firedAfter).toBeLessThan(1_500); // not restarted from zero either, nor lost
    expect(ref.address.startsWith(`${host.name}/`)).toBe(false);
    void b;
  });

  it("restores spawned children with their state, their systemIds and their own pending timers", async () => {
    const [a, b] = await cluster([{ name: "a", slots: 0 }, { name: "b" }, { name: "c" }]);
    const ref = a!.runtime.spawn("family", {}, { placement: { node: "b" } });
    expect((await ref.ask({ type: "INC" })).context).toMatchObject({ childCount: 1 });
    const beforeCheckpoint = monotonicNow();
    expect((await ref.ask({ type: "INC" })).context).toMatchObject({ childCount: 2, kidTicked: false });
    // What the new node starts from: the child's count, and its tick still to come.
    const checkpoint = ref.record!.checkpoint!;
    const kidTimer = checkpoint.timers.find((t) => t.source === "kid" && t.target === "kid");
    expect(kidTimer).toBeDefined();
    expect(checkpoint.persisted).toMatchObject({ children: { kid: { src: "kid", systemId: "kid-counter", snapshot: { context: { count: 2 } } } } });
    (ref.record as { placement: object }).placement = {};
    await b!.crash();
    await eventually(() => ref.address.startsWith("c/"), 5_000);
    // INC reaches the child through the system by its systemId, and the child counts on from 2.
    expect((await ref.ask({ type: "INC" })).context).toMatchObject({ childCount: 3 });
    // The child's own `after` fires on the new node (XState alone would drop it), not before it was due.
    await eventually(() => (ref.getSnapshot()?.context as { kidTicked?: boolean } | undefined)?.kidTicked === true, 5_000);
    expect(monotonicNow()).toBeGreaterThanOrEqual(beforeCheckpoint + kidTimer!.dueInMs - 5);
  });

  it("an actor XState cannot checkpoint keeps running, says why once, and its node keeps working", async () => {
    const warnings: { obj: unknown; msg: string | undefined }[] = [];
    const logger = recordingLogger(warnings);
    const a = await startRuntimeNode("a", { slots: 0 });
    const b = await startRuntimeNode("b", { seeds: [a.node.address], logger });
    nodes.push(a, b);
    await converged([a, b]);
    const ref = a.runtime.spawn("inline-family", {}, { placement: { node: "b" } });
    expect((await ref.ask({ type: "INC" })).context).toMatchObject({ childCount: 1 });
    expect((await ref.ask({ type: "INC" })).context).toMatchObject({ childCount: 2 });
    expect(ref.record!.checkpoint).toBeUndefined();
    await eventually(() => (ref.getSnapshot()?.context as { childCount?: number } | undefined)?.childCount === 2);
    const why = warnings.filter((w) => w.msg?.includes("cannot be checkpointed"));
    expect(why).toHaveLength(1);
    expect(why[0]!.obj).toMatchObject({ actorId: ref.id, logic: "inline-family", err: expect.stringMatching(/inline/i) });
    const counter = a.runtime.spawn("counter", {}, { placement: { node: "b" } });
    expect((await counter.ask({ type: "INC" })).context).toMatchObject({ count: 1 });
    expect(counter.record!.checkpoint).toBeDefined();
  });

  it("runs a promise actor again, once, elsewhere, with the same idempotency key", async () => {
    const [a] = await cluster([{ name: "a", slots: 0 }, { name: "b", slots: 1 }, { name: "c", slots: 1 }]);
    const ref = a!.runtime.spawn("slow", {});
    await eventually(() => runs.length === 1);
    const first = runs[0]!;
    const host = nodes.find((n) => n.name === first.node)!;
    await host.crash();
    await eventually(() => runs.length === 2, 5_000);
    releaseSlow();
    const output = await ref.done;
    expect(runs).toHaveLength(2);
    expect(runs[1]).toMatchObject({ key: first.key, attempt: 1, migration: true });
    expect(runs[1]!.node).not.toBe(first.node);
    expect(output).toBe(`finished on ${runs[1]!.node}`);
  });

  it("runs a promise actor again when its host restarts before anyone saw it down: the new life says it lacks it", async () => {
    const [a, b] = await cluster([{ name: "a", slots: 0 }, { name: "b", slots: 1 }]);
    const downs: string[] = [];
    a!.mesh.on("down", (m) => downs.push(m.name));
    const ref = a!.runtime.spawn("slow", {});
    await eventually(() => runs.length === 1 && ref.record?.status === "running");
    const port = Number(b!.node.address.split(":")[1]);
    await b!.crash();
    // Back at once on its port, with its id: a's link comes up again before its detector speaks.
    const again = await startRuntimeNode("b", { slots: 1, seeds: [a!.node.address], port, id: b!.node.identity.id });
    nodes.push(again);
    // Released until it ends: when a and b dial each other at once, the spawn that went over the
    // link that lost is sent again, and the run it started is superseded.
    await eventually(() => {
      if (runs.length > 1) releaseSlowOn("b");
      return ref.record?.finished === true;
    }, 5_000);
    await expect(ref.done).resolves.toBe("finished on b");
    expect(downs).toEqual([]);
    expect(runs.slice(1).every((r) => r.node === "b" && r.key === runs[0]!.key && r.migration)).toBe(true);
    expect(await a!.runtime.describe(ref.id)).toMatchObject({ migrations: 1, node: "b" });
  });

});

describe("Runtime: remote children in XState machines", () => {
  it("a parent machine invokes a remote child and gets XState's own done and error events", async () => {
    const [a] = await cluster([{ name: "a", slots: 0 }, { name: "b" }]);
    const parent = createMachine({
      initial: "working",
      context: { result: null as unknown, error: null as unknown },
      states: {
        working: {
          invoke: {
            src: a!.runtime.remote("double"),
            input: { n: 4 },
            onDone: { target: "failing", actions: assign({ result: ({ event }) => event.output }) },
          },
        },
        failing: {
          invoke: {
            src: a!.runtime.remote("fail"),
            onError: { target: "end", actions: assign({ error: ({ event }) => event.error }) },
          },
        },
        end: { type: "final" },
      },
      output: ({ context }) => context,
    });
    const output = (await toPromise(createActor(parent).start())) as { result: number; error: { code: string } };
    expect(output.result).toBe(8);
    expect(output.error).toMatchObject({ code: "SHOAL_ERR_ACTOR_FAILED" });
  });

  it("forwards the parent's events to the remote child and mirrors its state", async () => {
    const [a] = await cluster([{ name: "a", slots: 0 }, { name: "b" }]);
    const parent = createMachine({
      initial: "run",
      states: {
        run: {
          invoke: { id: "child", src: a!.runtime.remote("counter"), input: {}, onDone: "end" },
          on: { BUMP: { actions: ({ self }) => self.getSnapshot().children.child?.send({ type: "INC" }) }, STOP: { actions: ({ self }) => self.getSnapshot().children.child?.send({ type: "DONE" }) } },
        },
        end: { type: "final" },
      },
    });
    const actor = createActor(parent).start();
    actor.send({ type: "BUMP" });
    actor.send({ type: "BUMP" });
    const child = () => actor.getSnapshot().children.child?.getSnapshot() as { context?: { count: number }; address?: string } | undefined;
    await eventually(() => child()?.context?.count === 2);
    expect(child()?.address).toMatch(/^b\//);
    actor.send({ type: "STOP" });
    await toPromise(actor);
  });
});

describe("Runtime: drain and inspection", () => {
  it("drain hands machine actors to other nodes with their state and lets promise actors finish", async () => {
    const [a, b, c] = await cluster([{ name: "a", slots: 0 }, { name: "b" }, { name: "c", slots: 0 }]);
    const counterRef = a!.runtime.spawn("counter", {});
    const sleeper = a!.runtime.spawn("sleep", { ms: 150 });
    await counterRef.ask({ type: "INC" });
    await counterRef.ask({ type: "INC" });
    expect(counterRef.address).toMatch(/^b\//);
    c!.runtime.host.slots = 4;
    c!.mesh.setSlots(4);
    await eventually(() => a!.mesh.member(c!.node.identity.id)?.slots === 4);
    const result = await b!.runtime.drain(2_000);
    expect(result).toEqual({ handedOff: 1, abandoned: 0 });
    await expect(sleeper.done).resolves.toBe("b");
    await eventually(() => counterRef.address.startsWith("c/"));
    expect((await counterRef.ask({ type: "INC" })).context).toMatchObject({ count: 3 });
  });

  it("publishes XState inspection events of hosted actors and lists them", async () => {
    const [a, b] = await cluster([{ name: "a", slots: 0 }, { name: "b" }]);
    const seen: string[] = [];
    const off = b!.runtime.inspect((r) => seen.push(`${r.type}:${r.node}`));
    const ref = a!.runtime.spawn("counter", {});
    await ref.ask({ type: "INC" });
    expect(seen).toContain("@xstate.actor:b");
    expect(seen).toContain("@xstate.event:b");
    expect(seen).toContain("@xstate.snapshot:b");
    // Listeners that leave and come back get each event once, for actors of either age.
    off();
    const late = a!.runtime.spawn("counter", {});
    await late.ask({ type: "INC" });
    const again: string[] = [];
    b!.runtime.inspect((r) => r.type === "@xstate.event" && again.push(`${r.actorId}:${(r.event as { type: string }).type}`));
    await ref.ask({ type: "INC" });
    await late.ask({ type: "INC" });
    expect(again).toEqual([`${ref.id}:INC`, `${late.id}:INC`]);
    await late.stop();
    expect(b!.runtime.list()).toEqual([
      expect.objectContaining({ id: ref.id, logic: "counter", kind: "machine", state: "counting", status: "active", supervisor: a!.node.identity.id }),
    ]);
  });
});
