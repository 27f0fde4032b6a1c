import type { NodeStatus } from "@shoal/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { quorum } from "./quorum.js";

const view = (statuses: Record<string, NodeStatus>) => Object.entries(statuses).map(([id, status]) => ({ id, status }));
/** What `side` sees: its own members up, everyone else `seen` (down or suspect). */
const sideView = (all: string[], side: Set<string>, seen: NodeStatus = "down") => all.map((id) => ({ id, status: side.has(id) ? ("up" as const) : seen }));

describe("quorum: only a side with a strict majority of the last agreed membership dispatches", () => {
  it("a node cut off from 2 of 3 pauses; the 2 run", () => {
    const all = new Set(["a", "b", "c"]);
    expect(quorum(all, view({ a: "up", b: "down", c: "down" }), "a").majority).toBe(false);
    expect(quorum(all, view({ a: "down", b: "up", c: "up" }), "b").majority).toBe(true);
  });

  it("suspect is not up: a side pauses on suspicion already", () => {
    expect(quorum(new Set(["a", "b", "c"]), view({ a: "up", b: "suspect", c: "suspect" }), "a").majority).toBe(false);
    expect(quorum(new Set(["a", "b", "c"]), view({ a: "up", b: "up", c: "suspect" }), "a").majority).toBe(true);
  });

  it("a member seen up joins the membership at once; the side that holds a majority drops the down ones, not below 3", () => {
    const first = quorum(new Set(), view({ a: "up", b: "up", c: "up", d: "up" }), "a");
    expect([...first.membership].sort()).toEqual(["a", "b", "c", "d"]);
    // d lost for good: 3 of 4 up, the membership is those 3 ...
    const lost = quorum(first.membership, view({ a: "up", b: "up", c: "up", d: "down" }), "a");
    expect(lost.majority).toBe(true);
    expect([...lost.membership].sort()).toEqual(["a", "b", "c"]);
    // ... so losing c as well leaves 2 of 3: still a majority, and still 3 members.
    const again = quorum(lost.membership, view({ a: "up", b: "up", c: "down", d: "down" }), "a");
    expect(again).toEqual({ majority: true, membership: new Set(["a", "b", "c"]) });
    // d back: counted again (and c, down, goes as the 3 up are a majority).
    expect(quorum(again.membership, view({ a: "up", b: "up", c: "down", d: "up" }), "a").membership).toEqual(new Set(["a", "b", "d"]));
  });

  it("a member the table forgot counts as down, and is dropped only by a majority", () => {
    const m = new Set(["a", "b", "c", "d"]);
    expect(quorum(m, view({ a: "up", b: "up", c: "up" }), "a")).toEqual({ majority: true, membership: new Set(["a", "b", "c"]) });
    expect(quorum(m, view({ a: "up" }), "a")).toEqual({ majority: false, membership: m });
  });

  it("two nodes (or one): both run; the epoch fences the replaced owner at the heal", () => {
    expect(quorum(new Set(["a", "b"]), view({ a: "up", b: "down" }), "a").majority).toBe(true);
    expect(quorum(new Set(["a", "b"]), view({ a: "down", b: "up" }), "b").majority).toBe(true);
    expect(quorum(new Set(), [], "a").majority).toBe(true);
  });

  it("property: whatever the split and however often each side re-counts, at most one side dispatches", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 9 }),
        fc.array(fc.boolean(), { minLength: 9, maxLength: 9 }),
        fc.integer({ min: 1, max: 5 }),
        fc.constantFrom<NodeStatus>("down", "suspect"),
        (n, inLeft, rounds, seen) => {
          const all = Array.from({ length: n }, (_, i) => `n${i}`);
          const left = new Set(all.filter((_, i) => inLeft[i]));
          const right = new Set(all.filter((id) => !left.has(id)));
          const agreed = new Set(all);
          const run = (side: Set<string>) => {
            const self = [...side][0];
            if (self === undefined) return false;
            let m: Set<string> = agreed;
            let majority = false;
            for (let r = 0; r < rounds; r++) ({ membership: m, majority } = quorum(m, sideView(all, side, seen), self));
            return majority;
          };
          const l = run(left);
          const r = run(right);
          expect(l && r).toBe(false);
          // The bigger side of a split of 3 or more, if strictly bigger, runs.
          if (left.size * 2 > n) expect(l).toBe(true);
          if (right.size * 2 > n) expect(r).toBe(true);
        },
      ),
    );
  });

  it("property: a node alone never counts itself a majority of 3 or more, however long it is alone", () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 12 }), fc.integer({ min: 1, max: 10 }), (n, rounds) => {
        const all = Array.from({ length: n }, (_, i) => `n${i}`);
        let m = new Set(all);
        for (let r = 0; r < rounds; r++) {
          const v = quorum(m, sideView(all, new Set(["n0"])), "n0");
          expect(v.majority).toBe(false);
          m = v.membership;
        }
        expect(m.size).toBe(n);
      }),
    );
  });
});
