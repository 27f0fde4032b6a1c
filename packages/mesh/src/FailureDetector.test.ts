import { describe, expect, it } from "vitest";
import { FailureDetector } from "./FailureDetector.js";

const options = { intervalMs: 100, suspectAfterMs: 300, downAfterMs: 500 };

describe("FailureDetector", () => {
  it("suspects after one threshold of silence and declares down after the other", () => {
    const d = new FailureDetector(options);
    d.heard("a", 0);
    expect(d.check(["a"], 100)).toEqual([]);
    expect(d.check(["a"], 200)).toEqual([]);
    expect(d.check(["a"], 300)).toEqual([{ id: "a", status: "suspect", silentMs: 300 }]);
    expect(d.check(["a"], 400)).toEqual([{ id: "a", status: "suspect", silentMs: 400 }]);
    expect(d.check(["a"], 500)).toEqual([{ id: "a", status: "down", silentMs: 500 }]);
  });

  it("gives a peer it never heard from a full grace period", () => {
    const d = new FailureDetector(options);
    expect(d.check(["new"], 1000)).toEqual([]);
    expect(d.check(["new"], 1100)).toEqual([]);
    expect(d.check(["new"], 1300)).toMatchObject([{ status: "suspect" }]);
  });

  it("does not blame peers for the time its own loop was blocked", () => {
    const d = new FailureDetector(options);
    d.heard("a", 0);
    expect(d.check(["a"], 100)).toEqual([]);
    // The loop was blocked from 100 to 700: the next check runs 500 ms late.
    expect(d.check(["a"], 700)).toEqual([]);
    // Only the part of the block past one interval is forgiven: 300 ms of silence remain.
    expect(d.check(["a"], 800)).toEqual([{ id: "a", status: "suspect", silentMs: 300 }]);
  });
});
