import { MAX_INCARNATION, type Member } from "@shoal/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MembershipTable } from "./MembershipTable.js";

const base = (id: string, over: Partial<Member> = {}): Member => ({
  id,
  name: id,
  address: `127.0.0.1:${id.length}`,
  capabilities: [],
  tools: [],
  slots: 1,
  incarnation: 0,
  status: "up",
  running: 0,
  ...over,
});
const severity = { up: 0, suspect: 1, down: 2 } as const;
const status = fc.constantFrom("up" as const, "suspect" as const, "down" as const);
const record = fc.record({ incarnation: fc.nat({ max: 5 }), status });

/**
 * Steps taken by every Map and Set iterator while `fn` runs: the work of a merge that walks
 * (part of) the table, whatever the machine's speed.
 */
function iterationSteps(fn: () => void): number {
  let steps = 0;
  const patched: [object, PropertyKey, unknown][] = [];
  for (const proto of [Map.prototype, Set.prototype]) {
    for (const key of ["keys", "values", "entries", Symbol.iterator] as PropertyKey[]) {
      const original = Reflect.get(proto, key) as (this: unknown) => Iterator<unknown>;
      patched.push([proto, key, original]);
      Reflect.set(proto, key, function (this: unknown) {
        const it = original.call(this);
        const next = it.next.bind(it);
        return Object.assign(it, {
          next: () => {
            steps++;
            return next();
          },
        });
      });
    }
  }
  try {
    fn();
  } finally {
    for (const [proto, key, original] of patched) Reflect.set(proto, key, original);
  }
  return steps;
}

describe("MembershipTable", () => {
  it("converges: any order of the same first-hand records ends in the same status and incarnation", () => {
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 12 }), fc.nat(), (records, seed) => {
        const shuffled = [...records].sort((a, b) => ((a.incarnation * 7 + seed) % 5) - ((b.incarnation * 7 + seed) % 5));
        const end = (list: typeof records) => {
          const t = new MembershipTable(base("self"));
          for (const r of list) t.merge(base("x", r), "x");
          const m = t.get("x") as Member;
          return [m.incarnation, m.status];
        };
        const best = records.reduce((a, b) =>
          b.incarnation > a.incarnation || (b.incarnation === a.incarnation && severity[b.status] > severity[a.status]) ? b : a,
        );
        expect(end(records)).toEqual([best.incarnation, best.status]);
        expect(end(shuffled)).toEqual(end(records));
      }),
    );
  });

  it("never takes an incarnation above the highest the member sent itself, and never holds more rows than the cap", () => {
    const ids = ["a", "b", "c", "d", "e"];
    const step = fc.record({
      about: fc.constantFrom(...ids),
      from: fc.constantFrom(...ids, "liar"),
      incarnation: fc.oneof(fc.nat({ max: 6 }), fc.constant(MAX_INCARNATION)),
      status,
      mark: fc.constantFrom(undefined, "suspect" as const, "down" as const),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), fc.integer({ min: 2, max: 6 }), (steps, maxMembers) => {
        let clock = 0;
        const t = new MembershipTable(base("self"), { maxMembers, now: () => clock++ });
        const firstHand = new Map<string, number>();
        for (const s of steps) {
          if (s.mark) t.mark(s.about, s.mark);
          t.merge(base(s.about, { incarnation: s.incarnation, status: s.status }), s.from);
          if (s.from === s.about) firstHand.set(s.about, Math.max(firstHand.get(s.about) ?? 0, s.incarnation));
          expect(t.size).toBeLessThanOrEqual(maxMembers);
          for (const m of t.peers()) expect(m.incarnation).toBeLessThanOrEqual(firstHand.get(m.id) ?? 0);
        }
      }),
    );
  });

  it("refutes a report that this node is suspect or down at its incarnation, by one", () => {
    fc.assert(
      fc.property(fc.nat({ max: 1_000 }), fc.constantFrom("suspect" as const, "down" as const), (incarnation, status) => {
        const t = new MembershipTable(base("self", { incarnation }));
        expect(t.merge(base("self", { incarnation, status }), "peer")).toBe("refuted");
        expect(t.self).toMatchObject({ status: "up", incarnation: incarnation + 1 });
      }),
    );
  });

  it("ignores a record of itself at an incarnation it never had, and counts it", () => {
    fc.assert(
      fc.property(fc.nat({ max: 1_000 }), fc.integer({ min: 1, max: MAX_INCARNATION }), status, (own, above, status) => {
        const t = new MembershipTable(base("self", { incarnation: own }));
        const claimed = Math.min(own + above, MAX_INCARNATION);
        fc.pre(claimed > own);
        expect(t.merge(base("self", { incarnation: claimed, status }), "peer")).toBe("forged");
        expect(t.self).toMatchObject({ status: "up", incarnation: own });
        expect(t.stats.forged).toBe(1);
      }),
    );
  });

  it("raises its incarnation once a round, however often a peer repeats the report", () => {
    const t = new MembershipTable(base("self", { incarnation: 4 }));
    for (let i = 4; i < 100; i++) t.merge(base("self", { incarnation: i, status: "down" }), "peer");
    expect(t.self.incarnation).toBe(5);
    t.nextRound();
    expect(t.merge(base("self", { incarnation: 5, status: "suspect" }), "peer")).toBe("refuted");
    expect(t.self.incarnation).toBe(6);
  });

  it("does not go past the bound: at MAX_INCARNATION it says it cannot refute", () => {
    const t = new MembershipTable(base("self", { incarnation: MAX_INCARNATION }));
    expect(t.merge(base("self", { incarnation: MAX_INCARNATION, status: "down" }), "peer")).toBe("exhausted");
    expect(t.self.incarnation).toBe(MAX_INCARNATION);
    expect(t.leave().incarnation).toBe(MAX_INCARNATION);
  });

  it("ignores old news about itself", () => {
    const t = new MembershipTable(base("self", { incarnation: 3 }));
    expect(t.merge(base("self", { incarnation: 2, status: "down" }), "peer")).toBeUndefined();
    expect(t.self.incarnation).toBe(3);
  });

  it("takes a third party's suspicion or death notice only at the incarnation it knows", () => {
    const t = new MembershipTable(base("self"));
    t.merge(base("x", { incarnation: 2 }), "x");
    expect(t.merge(base("x", { incarnation: MAX_INCARNATION, status: "down" }), "y")).toBe("unverified");
    expect(t.merge(base("x", { incarnation: 3, status: "up" }), "y")).toBe("unverified");
    expect(t.merge(base("x", { incarnation: 1, status: "down" }), "y")).toBeUndefined();
    expect(t.get("x")).toMatchObject({ incarnation: 2, status: "up" });
    expect(t.merge(base("x", { incarnation: 2, status: "suspect" }), "y")).toMatchObject({ kind: "suspect", member: { incarnation: 2 } });
    expect(t.stats.unverified).toBe(2);
    // The member itself outbids the suspicion.
    expect(t.merge(base("x", { incarnation: 3 }), "x")).toMatchObject({ kind: "up", member: { incarnation: 3 } });
  });

  it("takes a stranger from a third party at incarnation 0 and only if it is up; its own record then wins", () => {
    const t = new MembershipTable(base("self"));
    expect(t.merge(base("x", { incarnation: 9, status: "down" }), "y")).toBeUndefined();
    expect(t.merge(base("x", { incarnation: 9, status: "suspect" }), "y")).toBeUndefined();
    expect(t.merge(base("x", { incarnation: 9, tools: ["cam"] }), "y")).toMatchObject({ kind: "joined", member: { incarnation: 0, tools: ["cam"] } });
    expect(t.merge(base("x", { incarnation: 9 }), "x")).toMatchObject({ kind: "updated", member: { incarnation: 9 } });
  });

  it("takes load only first-hand, and status from anyone", () => {
    const t = new MembershipTable(base("self"));
    t.merge(base("x"), "x");
    expect(t.merge(base("x", { running: 3 }), "y")).toBeUndefined();
    expect(t.merge(base("x", { running: 3 }), "x")).toMatchObject({ kind: "updated" });
    expect(t.merge(base("x", { running: 9, status: "suspect" }), "y")).toMatchObject({ kind: "suspect", member: { running: 3 } });
  });

  it("brings a restarted node back up only at a higher incarnation", () => {
    const t = new MembershipTable(base("self"));
    t.merge(base("x"), "x");
    t.mark("x", "down");
    expect(t.merge(base("x"), "x")).toBeUndefined();
    expect(t.merge(base("x", { incarnation: 1 }), "x")).toMatchObject({ kind: "up" });
  });

  it("replaces a dead member's record when a new node id arrives under its name", () => {
    const t = new MembershipTable(base("self"));
    t.merge(base("old", { name: "cam-1" }), "old");
    t.mark("old", "down");
    t.merge(base("new", { name: "cam-1" }), "new");
    expect(t.peers().map((m) => m.id)).toEqual(["new"]);
    expect(t.at("127.0.0.1:3").map((m) => m.id)).toEqual(["new"]);
  });

  it("past the cap makes room by dropping the longest-down member, else refuses the newcomer", () => {
    let clock = 0;
    const t = new MembershipTable(base("self"), { maxMembers: 4, now: () => clock++ });
    for (const id of ["a", "b", "c"]) t.merge(base(id), id);
    expect(t.merge(base("d"), "d")).toBe("full");
    expect(t.merge(base("d"), "someone")).toBe("full");
    expect(t.stats.refused).toBe(2);
    t.mark("b", "down");
    t.mark("a", "down");
    expect(t.merge(base("d"), "someone")).toMatchObject({ kind: "joined" });
    expect(t.peers().map((m) => m.id).sort()).toEqual(["a", "c", "d"]);
    expect(t.merge(base("e"), "e")).toMatchObject({ kind: "joined" });
    expect(t.peers().map((m) => m.id).sort()).toEqual(["c", "d", "e"]);
    expect(t.stats.evicted).toBe(2);
    expect(t.size).toBe(4);
  });

  it("forgets down members in the order they went down, up to a time", () => {
    let clock = 0;
    const t = new MembershipTable(base("self"), { now: () => clock });
    for (const id of ["a", "b", "c"]) t.merge(base(id), id);
    clock = 10;
    t.mark("b", "down");
    clock = 20;
    t.mark("a", "down");
    expect(t.forgetDownBefore(15).map((c) => c.member.id)).toEqual(["b"]);
    expect(t.forgetDownBefore(25).map((c) => c.member.id)).toEqual(["a"]);
    expect(t.peers().map((m) => m.id)).toEqual(["c"]);
  });

  it("merges a frame at a cost that does not grow with the table", () => {
    const frame = Array.from({ length: 6_000 }, (_, i) => base(`invented-${i}`, { address: `10.0.${i >> 8}.${i & 255}:7000` }));
    const stepsInto = (rows: number) => {
      const t = new MembershipTable(base("self"), { maxMembers: 1_024 });
      for (let i = 1; i < rows; i++) t.merge(base(`real-${i}`), `real-${i}`);
      for (let i = 1; i < rows; i += 2) t.mark(`real-${i}`, "down");
      expect(t.size).toBe(rows);
      const steps = iterationSteps(() => {
        for (const r of frame) t.merge(r, "liar");
      });
      expect(t.size).toBeLessThanOrEqual(1_024);
      return steps;
    };
    const small = stepsInto(10);
    const full = stepsInto(1_024);
    // A scan of the table per record would be millions of steps at 1,024 rows.
    expect(full).toBeLessThan(4 * frame.length);
    expect(full).toBeLessThan(2 * small + 1_024);
  });

  it("leaving marks itself down at a new incarnation, which peers accept", () => {
    const t = new MembershipTable(base("self"));
    const farewell = t.leave();
    const peer = new MembershipTable(base("peer"));
    peer.merge(base("self"), "self");
    expect(peer.merge(farewell, "self")).toMatchObject({ kind: "down" });
  });

  it("lists what changed in recent rounds and always itself", () => {
    const t = new MembershipTable(base("self"));
    t.nextRound();
    t.merge(base("a"), "a");
    for (let i = 0; i < 5; i++) t.nextRound();
    t.merge(base("b"), "b");
    expect(t.changedSince(3).map((m) => m.id)).toEqual(["self", "b"]);
  });
});
