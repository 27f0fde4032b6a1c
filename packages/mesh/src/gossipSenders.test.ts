import type { Member, NodeIdentity } from "@shoal/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { gossipRefusal } from "./gossipSenders.js";

const hello: NodeIdentity = { id: "b", name: "b", address: "127.0.0.1:7001", capabilities: ["gpu"], tools: ["llm.generate", "camera.capture"], slots: 4 };
const record = (patch: Partial<Member> = {}): Member => ({ ...hello, incarnation: 3, status: "up", running: 1, ...patch });
const relayer: NodeIdentity = { ...hello, id: "c", name: "c", address: "127.0.0.1:7002" };

describe("gossipRefusal: a node speaks only for itself", () => {
  it("a node's own record must be its hello; its load and slots are its own to say", () => {
    expect(gossipRefusal(record({ running: 4, slots: 0 }), hello, record(), hello)).toBeUndefined();
    expect(gossipRefusal(record({ slots: 100_000 }), hello, record(), hello)).toBeUndefined();
    expect(gossipRefusal(record({ name: "a" }), hello, record(), hello)).toMatch(/its own record says name a other than its hello/);
    expect(gossipRefusal(record({ tools: ["evil"] }), hello, record(), hello)).toMatch(/tools \[evil\]/);
  });

  it("a third party offers no more slots than the node itself: its hello, or its own record", () => {
    expect(gossipRefusal(record({ slots: 100_000 }), relayer, record(), hello)).toMatch(/its record of b offers 100000 slots; b itself offers 4/);
    // A relay a round behind a drain (its own record now says 0): no lie.
    expect(gossipRefusal(record({ slots: 4 }), relayer, record({ slots: 0 }), hello)).toBeUndefined();
    // Raised above its hello by the node itself, and relayed.
    expect(gossipRefusal(record({ slots: 8 }), relayer, record({ slots: 8 }), hello)).toBeUndefined();
  });

  it("a third party's record of a linked node at the known incarnation carries only what that node said", () => {
    expect(gossipRefusal(record({ status: "suspect", running: 0 }), relayer, record(), hello)).toBeUndefined();
    expect(gossipRefusal(record({ tools: ["llm.generate"] }), relayer, record(), hello)).toMatch(/its record of b says tools \[llm.generate\] other than b itself/);
    expect(gossipRefusal(record({ capabilities: [] }), relayer, record(), hello)).toMatch(/capabilities \[\]/);
    expect(gossipRefusal(record({ address: "10.0.0.9:7001" }), relayer, record(), hello)).toMatch(/address 10.0.0.9:7001/);
  });

  it("what cannot be checked against a hello is left to the table: strangers, other incarnations, unlinked members", () => {
    expect(gossipRefusal(record({ tools: ["x"] }), relayer, undefined, hello)).toBeUndefined();
    expect(gossipRefusal(record({ tools: ["x"], incarnation: 2 }), relayer, record(), hello)).toBeUndefined();
    expect(gossipRefusal(record({ tools: ["x"] }), relayer, record(), undefined)).toBeUndefined();
    // Linked to a new life with other tools, its own record not here yet: an old relay is no lie.
    expect(gossipRefusal(record({ tools: ["old"] }), relayer, record({ tools: ["old"] }), hello)).toBeUndefined();
  });

  it("property: any change to a fixed field of a linked node is refused from anyone, and more slots from a third party", () => {
    const change = fc.oneof(
      fc.record({ tools: fc.array(fc.constantFrom("llm.generate", "camera.capture", "x"), { maxLength: 3 }) }),
      fc.record({ capabilities: fc.array(fc.constantFrom("gpu", "cpu"), { maxLength: 2 }) }),
      fc.record({ slots: fc.integer({ min: 0, max: 100_000 }) }),
      fc.record({ name: fc.constantFrom("b", "a", "z") }),
    );
    fc.assert(
      fc.property(change, fc.boolean(), (patch, fromItself) => {
        const r = record(patch);
        const changed =
          (!fromItself && r.slots > hello.slots) || r.name !== hello.name || r.tools.join() !== hello.tools.join() || r.capabilities.join() !== hello.capabilities.join();
        const refusal = gossipRefusal(r, fromItself ? hello : relayer, record(), hello);
        expect(refusal !== undefined).toBe(changed);
      }),
    );
  });
});
