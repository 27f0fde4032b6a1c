import fc from "fast-check";
import { monotonicNow } from "@shoal/protocol";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type AnyActor, assign, createActor, createMachine, fromPromise, setup } from "xstate";
import { agedCheckpoint, checkpointOf, persistedSnapshotOf, restoreTimers, timerClock } from "./snapshots.js";

const machine = createMachine({
  id: "m",
  initial: "waiting",
  context: { n: 1 },
  states: { waiting: { after: { 300: "fired" } }, fired: {} },
});

describe("checkpoints", () => {
  it("carry the pending delayed events that XState's persisted snapshot leaves out", () => {
    const actor = createActor(machine).start();
    const cp = checkpointOf(actor, 3);
    actor.stop();
    expect(cp.seq).toBe(3);
    expect(cp.timers).toHaveLength(1);
    expect(cp.timers[0]).toMatchObject({ source: "", target: "", event: { type: expect.stringContaining("xstate.after") } });
    expect(cp.timers[0]!.dueInMs).toBeGreaterThan(250);
    expect(cp.timers[0]!.dueInMs).toBeLessThanOrEqual(300);
  });

  it("a restored machine without its timers never fires; with them it fires on time", async () => {
    const actor = createActor(machine).start();
    const taken = monotonicNow();
    const cp = checkpointOf(actor, 1);
    actor.stop();
    const plain = createActor(machine, { snapshot: cp.persisted as never }).start();
    const restored = createActor(machine, { snapshot: cp.persisted as never }).start();
    restoreTimers(restored, cp.timers);
    await new Promise((r) => restored.subscribe((s) => s.value === "fired" && r(null)));
    expect(plain.getSnapshot().value).toBe("waiting"); // what XState alone would do
    expect(monotonicNow()).toBeGreaterThanOrEqual(taken + cp.timers[0]!.dueInMs - 5);
    plain.stop();
    restored.stop();
  });

  describe("across a wall-clock step", () => {
    afterEach(() => vi.restoreAllMocks());

    it("say how long each timer has left on the monotonic clock when the machine runs on timerClock", () => {
      const actor: AnyActor = createActor(machine, { clock: timerClock(() => actor.system) });
      actor.start();
      // The wall clock jumps an hour ahead (NTP, date -s) before the checkpoint is taken...
      const wall = Date.now.bind(Date);
      vi.spyOn(Date, "now").mockImplementation(() => wall() + 3_600_000);
      const cp = checkpointOf(actor, 1);
      actor.stop();
      // ...and the timer still has its ~300 ms, not 0 (fired at once where it is restored).
      expect(cp.timers[0]!.dueInMs).toBeGreaterThan(250);
    });

    it("a machine without timerClock has only XState's wall stamp: bounded by the delay, never more", () => {
      const actor = createActor(machine).start();
      const wall = Date.now.bind(Date);
      vi.spyOn(Date, "now").mockImplementation(() => wall() - 3_600_000);
      const cp = checkpointOf(actor, 1);
      actor.stop();
      expect(cp.timers[0]!.dueInMs).toBe(300);
    });
  });

  it("kept a while, lose that time off their timers, never below 0", () => {
    const actor = createActor(machine).start();
    const cp = checkpointOf(actor, 1);
    actor.stop();
    const left = cp.timers[0]!.dueInMs;
    expect(agedCheckpoint(cp, 100).timers[0]!.dueInMs).toBeCloseTo(left - 100);
    expect(agedCheckpoint(cp, 10_000).timers[0]!.dueInMs).toBe(0);
    expect(agedCheckpoint(cp, 100).persisted).toBe(cp.persisted);
    expect(cp.timers[0]!.dueInMs).toBe(left);
  });

  it("a restored timer is cancelled like the original when the state is left early", async () => {
    const leaving = createMachine({
      initial: "waiting",
      states: { waiting: { after: { 100: "fired" }, on: { SKIP: "skipped" } }, fired: {}, skipped: { after: { 150: "late" } }, late: {} },
    });
    const actor = createActor(leaving).start();
    const cp = checkpointOf(actor, 1);
    actor.stop();
    const restored = createActor(leaving, { snapshot: cp.persisted as never }).start();
    restoreTimers(restored, cp.timers);
    restored.send({ type: "SKIP" });
    await new Promise((r) => setTimeout(r, 130));
    expect(restored.getSnapshot().value).toBe("skipped");
    restored.stop();
  });
});

/** Context goes in as input; SET replaces a field, NEXT, BACK and RETURN (through a history state) walk the states, FINISH ends with the context as output. */
type WalkerEvent = { type: "NEXT" | "BACK" | "RETURN" | "FINISH" } | { type: "SET"; key: string; value: unknown };
const walker = setup({ types: { context: {} as Record<string, unknown>, input: {} as Record<string, unknown>, events: {} as WalkerEvent } }).createMachine({
  context: ({ input }) => input,
  initial: "a",
  states: {
    a: { on: { NEXT: "b", RETURN: "b.hist" } },
    b: { initial: "inner", states: { inner: { on: { NEXT: "deeper" } }, deeper: {}, hist: { type: "history" } }, on: { BACK: "a" } },
    done: { type: "final" },
  },
  on: {
    SET: { actions: assign(({ context, event }) => ({ ...context, [event.key]: event.value })) },
    FINISH: ".done",
  },
  output: ({ context }) => context,
});

const jsonOf = (value: unknown) => JSON.parse(JSON.stringify(value));

describe("persisted snapshots", () => {
  it("built directly, equal XState's own for any plain context and any path through the machine", () => {
    const event = fc.oneof(
      fc.constant({ type: "NEXT" }),
      fc.constant({ type: "BACK" }),
      fc.constant({ type: "RETURN" }),
      fc.constant({ type: "FINISH" }),
      fc.record({ type: fc.constant("SET"), key: fc.string({ maxLength: 8 }), value: fc.jsonValue({ maxDepth: 3 }) }),
    );
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }), fc.array(event, { maxLength: 8 }), (input, events) => {
        const actor = createActor(walker, { input: jsonOf(input) }).start();
        for (const e of events) {
          if (actor.getSnapshot().status !== "active") break; // done: XState would only warn
          actor.send(e as WalkerEvent);
          const ours = persistedSnapshotOf(actor);
          // Only the fields XState leaves undefined may be missing from ours.
          expect(jsonOf(ours)).toEqual(jsonOf(actor.getPersistedSnapshot()));
          // And it restores to the same machine state.
          const restored = createActor(walker, { snapshot: ours as never, input: {} });
          expect(restored.getSnapshot().value).toEqual(actor.getSnapshot().value);
          expect(restored.getSnapshot().context).toEqual(actor.getSnapshot().context);
          expect(restored.getSnapshot().status).toBe(actor.getSnapshot().status);
        }
        actor.stop();
      }),
      { numRuns: 200 },
    );
  });

  it("go through XState for machines with children, history or actor refs in context", async () => {
    const child = fromPromise(() => new Promise(() => {}));
    const parent = setup({ actors: { child } }).createMachine({
      context: ({ spawn }) => ({ ref: spawn("child", { id: "c" }) }),
      initial: "on",
      states: {
        on: { initial: "x", states: { x: { on: { GO: "y" } }, y: {}, hist: { type: "history" } }, on: { OFF: "off" } },
        off: { on: { ON: "on.hist" } },
      },
    });
    const actor = createActor(parent).start();
    actor.send({ type: "GO" });
    actor.send({ type: "OFF" });
    const persisted = persistedSnapshotOf(actor) as { children: Record<string, unknown>; context: { ref: unknown }; historyValue: Record<string, unknown> };
    expect(persisted).toEqual(actor.getPersistedSnapshot());
    expect(Object.keys(persisted.children)).toEqual(["c"]);
    expect(persisted.context.ref).toMatchObject({ id: "c" });
    expect(Object.keys(persisted.historyValue).length).toBeGreaterThan(0);
    const restored = createActor(parent, { snapshot: persisted as never }).start();
    restored.send({ type: "ON" });
    expect(restored.getSnapshot().value).toEqual({ on: "y" });
    actor.stop();
    restored.stop();
  });
});
