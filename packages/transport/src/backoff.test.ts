import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createBackoff } from "./backoff.js";

describe("createBackoff", () => {
  it("grows exponentially up to the cap, with the jitter factor applied", () => {
    const b = createBackoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000, 1000]);
    b.reset();
    expect(b.next()).toBe(100);
  });

  it("never waits less than 1 ms nor more than the cap", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 60_000 }), fc.double({ min: 0, max: 0.999, noNaN: true }), fc.nat({ max: 60 }), (initialMs, maxMs, r, n) => {
        const b = createBackoff({ initialMs, maxMs, random: () => r });
        for (let i = 0; i < n; i++) b.next();
        const d = b.next();
        expect(d).toBeGreaterThanOrEqual(1);
        expect(d).toBeLessThanOrEqual(Math.max(1, maxMs));
      }),
    );
  });
});
