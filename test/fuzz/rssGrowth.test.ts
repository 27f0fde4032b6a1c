import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RSS_WINDOW_MS, type SlotStats, rssGrowth } from "./FuzzMesh.js";

const MINUTE = 60_000;
const NO_HEAP = { heapTotal: 0, heapUsed: 0, external: 0 };

/** Samples every 500 ms over `minutes`, from a base of 180 MB plus `leakMb` spread evenly over the run, plus each sample's spike. */
function slot(minutes: number, leakMb: number, spikes: number[]): SlotStats {
  const n = (minutes * MINUTE) / 500;
  const samples = Array.from({ length: n }, (_, i) => ({ at: i * 500, mb: 180 + (leakMb * i) / n + (spikes[i % spikes.length] ?? 0) }));
  return { name: "x", crashes: 0, restarts: 0, firstRssMb: 100, startRssMb: 100, lastRssMb: 0, peakRssMb: 0, restBeforeMb: 0, restAfterMb: 0, samples, settledAt: 0, settledHeap: NO_HEAP, lastHeap: NO_HEAP };
}

// Spikes as samples catch them, one per sample of a 6-minute run: most at rest, about one in five while a large input is in hand.
const spikes = fc.array(fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 60 }) }), { minLength: 720, maxLength: 720 });

describe("rssGrowth: the fuzz run's RSS yardstick", () => {
  it("property: spikes of up to 60 MB in single samples do not count as growth when nothing leaks", () => {
    fc.assert(
      fc.property(spikes, (s) => {
        expect(Math.abs(rssGrowth(slot(6, 0, s)).growth)).toBeLessThan(20);
      }),
      { seed: 1 },
    );
  });

  it("property: a steady leak of 60 MB over the run still fails the 50 MB target, whatever the spikes", () => {
    fc.assert(
      fc.property(spikes, (s) => {
        // The windows' medians sit a window's width inside each end: they see all but that much of the leak.
        expect(rssGrowth(slot(6, 60, s)).growth).toBeGreaterThan(50);
      }),
      { seed: 1 },
    );
  });

  it("in a run shorter than 3 windows the windows shrink and never overlap: a leak still shows", () => {
    const short = slot(0.5, 90, [0]);
    expect(rssGrowth(short).growth).toBeGreaterThan(50);
    expect(rssGrowth(short).warm).toBeLessThan(rssGrowth(short).end);
  });

  it("counts from the end of the warm-up, not from the start of the process", () => {
    const s = slot(6, 0, [0]);
    for (const x of s.samples) if (x.at < MINUTE) x.mb -= 80;
    expect(rssGrowth(s).growth).toBeGreaterThan(50);
    s.settledAt = MINUTE;
    expect(rssGrowth(s).growth).toBe(0);
    expect(rssGrowth(s).warm).toBe(180);
    expect(RSS_WINDOW_MS).toBeLessThan(MINUTE);
  });
});
