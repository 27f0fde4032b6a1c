import type { Member } from "@shoal/protocol";
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
const record = fc.record({
  incarnation: fc.nat({ max: 5 }),
  status: fc.constantFrom("up" as const, "suspect" as const, "down" as const),
});

describe("MembershipTable", () => {
  it("converges: any order of the same records ends in the same status and incarnation", () => {
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 12 }), fc.nat(), (records, seed) => {
        const shuffled = [...records].sort((a, b) => ((a.incarnation * 7 + seed) % 5) - ((b.incarnation * 7 + seed) % 5));
        const end = (list: typeof records) => {
          const t = new MembershipTable(base("self"));
          for (const r of list) t.merge(base("x", r), "someone");
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

  it("refutes any report that this node is suspect or down by outbidding its incarnation", () => {
    fc.assert(
      fc.property(fc.nat({ max: 100 }), fc.constantFrom("suspect" as const, "down" as const), (incarnation, status) => {
        const t = new MembershipTable(base("self"));
        expect(t.merge(base("self", { incarnation, status }), "peer")).toBe("refuted");
        expect(t.self.status).toBe("up");
        expect(t.self.incarnation).toBe(incarnation + 1);
      }),
    );
  });

  it("ignores old news about itself", () => {
    const t = new MembershipTable(base("self", { incarnation: 3 }));
    expect(t.merge(base("self", { incarnation: 2, status: "down" }), "peer")).toBeUndefined();
    expect(t.self.incarnation).toBe(3);
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
