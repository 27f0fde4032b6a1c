import { StateChartSchema } from "@shoal/protocol";
import { describe, expect, it } from "vitest";
import { counter, delayed } from "./testing/cluster.js";
import { stateChartOf } from "./stateChart.js";

describe("stateChartOf", () => {
  it("lists states, the initial one and transitions with their targets", () => {
    const chart = StateChartSchema.parse(stateChartOf(counter));
    expect(chart).toMatchObject({ id: "counter", type: "compound", initial: "counter.counting" });
    expect(chart.states.map((s) => [s.key, s.type])).toEqual([
      ["counting", "atomic"],
      ["finished", "final"],
    ]);
    expect(chart.states[0]?.transitions).toEqual([
      { event: "INC", targets: [] },
      { event: "DONE", targets: ["counter.finished"] },
    ]);
  });

  it("shows delayed transitions as their after-events", () => {
    const chart = stateChartOf(delayed);
    expect(chart.states[0]?.transitions[0]).toEqual({ event: expect.stringMatching(/^xstate\.after\.600/), targets: ["delayed.fired"] });
  });
});
