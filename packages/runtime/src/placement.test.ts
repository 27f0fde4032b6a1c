import type { Member } from "@shoal/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { choosePlacement } from "./placement.js";

const member = (name: string, over: Partial<Member> = {}): Member => ({
  id: `id-${name}`,
  name,
  address: `127.0.0.1:${name.length}`,
  capabilities: [],
  tools: ["t"],
  slots: 2,
  incarnation: 0,
  status: "up",
  running: 0,
  ...over,
});
const req = (over: Partial<Parameters<typeof choosePlacement>[1]> = {}) => ({
  logic: "t",
  placement: {},
  selfId: "id-a",
  reserved: new Map<string, number>(),
  sameLogic: new Map<string, number>(),
  ...over,
});

describe("choosePlacement", () => {
  it("least_loaded picks the node with the lowest share of busy slots and says why", () => {
    const r = choosePlacement([member("a", { running: 1 }), member("b", { running: 0, slots: 4 }), member("c", { running: 1, slots: 4 })], req());
    expect(r).toMatchObject({ kind: "placed", decision: { nodeName: "b", strategy: "least_loaded", eligible: ["a", "b", "c"] } });
  });

  it("never places on suspect or down nodes, nodes without the logic or capability, or without slots", () => {
    const r = choosePlacement(
      [
        member("s", { status: "suspect" }),
        member("d", { status: "down" }),
        member("x", { tools: [] }),
        member("g", { capabilities: [] }),
        member("z", { slots: 0, capabilities: ["gpu"] }),
        member("ok", { capabilities: ["gpu"] }),
      ],
      req({ placement: { capabilities: ["gpu"] } }),
    );
    expect(r.kind).toBe("placed");
    if (r.kind !== "placed") return;
    expect(r.decision.nodeName).toBe("ok");
    expect(Object.fromEntries(r.decision.rejected.map((x) => [x.node, x.why]))).toEqual({
      s: "status suspect",
      d: "status down",
      x: "does not host t",
      g: "lacks capability gpu",
      z: "no slots (draining or compute-less)",
    });
  });

  it("waits when every eligible node is busy, and fails when none is eligible", () => {
    expect(choosePlacement([member("a", { running: 2 })], req())).toMatchObject({ kind: "wait" });
    expect(choosePlacement([member("a")], req({ reserved: new Map([["id-a", 2]]) }))).toMatchObject({ kind: "wait" });
    expect(choosePlacement([member("a")], req({ logic: "other" }))).toMatchObject({ kind: "fail", error: { code: "SHOAL_ERR_UNKNOWN_LOGIC" } });
    expect(choosePlacement([member("a", { status: "down" })], req())).toMatchObject({ kind: "fail", error: { code: "SHOAL_ERR_NO_NODE" } });
  });

  it("honours a pinned node, waits while it is suspect, fails when it is gone", () => {
    const members = [member("a"), member("b", { running: 1 })];
    expect(choosePlacement(members, req({ placement: { node: "b" } }))).toMatchObject({ kind: "placed", decision: { nodeName: "b", strategy: "pinned" } });
    expect(choosePlacement([member("b", { status: "suspect" })], req({ placement: { node: "b" } }))).toMatchObject({ kind: "wait" });
    expect(choosePlacement([member("b", { status: "down" })], req({ placement: { node: "b" } }))).toMatchObject({ kind: "fail" });
    expect(choosePlacement(members, req({ placement: { node: "ghost" } }))).toMatchObject({ kind: "fail" });
  });

  it("local prefers this node while it has room; spread avoids nodes with the same logic", () => {
    const members = [member("a", { running: 1 }), member("b")];
    expect(choosePlacement(members, req({ placement: { prefer: "local" } }))).toMatchObject({ decision: { nodeName: "a" } });
    expect(choosePlacement(members, req({ placement: { prefer: "spread" }, sameLogic: new Map([["id-b", 1]]) }))).toMatchObject({ decision: { nodeName: "a" } });
    expect(choosePlacement(members, req({ exclude: new Set(["id-b"]) }))).toMatchObject({ decision: { nodeName: "a" } });
  });

  it("never picks a node that lacks a free slot or is not eligible (property)", () => {
    const arbMember = fc.record({
      name: fc.constantFrom("a", "b", "c", "d"),
      status: fc.constantFrom("up" as const, "suspect" as const, "down" as const),
      slots: fc.nat({ max: 3 }),
      running: fc.nat({ max: 4 }),
      gpu: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.uniqueArray(arbMember, { selector: (m) => m.name, maxLength: 4 }), fc.boolean(), (specs, wantGpu) => {
        const members = specs.map((s) => member(s.name, { status: s.status, slots: s.slots, running: s.running, capabilities: s.gpu ? ["gpu"] : [] }));
        const r = choosePlacement(members, req({ placement: wantGpu ? { capabilities: ["gpu"] } : {} }));
        const ok = members.filter((m) => m.status === "up" && m.slots > 0 && m.running < m.slots && (!wantGpu || m.capabilities.includes("gpu")));
        if (r.kind === "placed") expect(ok.map((m) => m.name)).toContain(r.decision.nodeName);
        else expect(ok).toEqual([]);
      }),
    );
  });
});
