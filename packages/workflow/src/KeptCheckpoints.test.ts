import type { InstanceRecord } from "@shoal/protocol";
import { describe, expect, it } from "vitest";
import { KeptCheckpoints } from "./KeptCheckpoints.js";

const record = (id: string, dueInMs?: number): InstanceRecord => ({
  id,
  step: id,
  logic: "agent",
  status: "running",
  node: "b",
  attempts: 1,
  startedAt: 0,
  endedAt: null,
  spawned: true,
  actor: `a~${id}`,
  ...(dueInMs !== undefined && {
    checkpoint: { persisted: { value: "waiting" }, timers: [{ id: "t", source: "", target: "", event: { type: "xstate.after.1000" }, dueInMs }], seq: 3 },
  }),
});

describe("KeptCheckpoints", () => {
  it("a takeover runs a copied agent's timers with what they had left less the time the copy waited here", () => {
    let now = 1_000;
    const kept = new KeptCheckpoints(() => now);
    kept.heard("wf_x", [record("s", 800), record("t", 300), record("u")]);
    now += 100;
    kept.heard("wf_x", [record("t", 900)]); // a fresher checkpoint of t
    now += 250;
    const taken = kept.takeOver("wf_x", { s: record("s", 800), t: record("t", 900), u: record("u") });
    expect(taken.s?.checkpoint?.timers[0]?.dueInMs).toBe(450);
    expect(taken.t?.checkpoint?.timers[0]?.dueInMs).toBe(650);
    expect(taken.u?.checkpoint).toBeUndefined();
    // Taken over: forgotten here, so a second takeover would not age them twice.
    expect(kept.takeOver("wf_x", { s: record("s", 800) }).s?.checkpoint?.timers[0]?.dueInMs).toBe(800);
  });

  it("a record copied again without a checkpoint (ended, or a retry) is not aged; never below 0", () => {
    let now = 0;
    const kept = new KeptCheckpoints(() => now);
    kept.heard("wf_y", [record("s", 100), record("t", 100)]);
    kept.heard("wf_y", [record("s")]);
    now += 5_000;
    const taken = kept.takeOver("wf_y", { s: record("s", 100), t: record("t", 100) });
    expect(taken.s?.checkpoint?.timers[0]?.dueInMs).toBe(100);
    expect(taken.t?.checkpoint?.timers[0]?.dueInMs).toBe(0);
  });
});
