import { describe, expect, it } from "vitest";
import { createActor, createMachine } from "xstate";
import { checkpointOf, restoreTimers } from "./snapshots.js";

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
    expect(cp.timers[0]!.dueAt - cp.takenAt).toBeGreaterThan(250);
  });

  it("a restored machine without its timers never fires; with them it fires on time", async () => {
    const actor = createActor(machine).start();
    const cp = checkpointOf(actor, 1);
    actor.stop();
    const plain = createActor(machine, { snapshot: cp.persisted as never }).start();
    const restored = createActor(machine, { snapshot: cp.persisted as never }).start();
    restoreTimers(restored, cp.timers);
    await new Promise((r) => restored.subscribe((s) => s.value === "fired" && r(null)));
    expect(plain.getSnapshot().value).toBe("waiting"); // what XState alone would do
    expect(Date.now()).toBeGreaterThanOrEqual(cp.timers[0]!.dueAt - 5);
    plain.stop();
    restored.stop();
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
