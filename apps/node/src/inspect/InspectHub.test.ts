import type { InspectEvent } from "@shoal/protocol";
import { describe, expect, it } from "vitest";
import { coalesce } from "./InspectHub.js";

const snap = (actorId: string, n: number): InspectEvent => ({ kind: "actor", at: n, node: "b", actorId, type: "@xstate.snapshot", sessionId: "x", snapshot: { status: "active", context: { n } } });
const event = (actorId: string, n: number): InspectEvent => ({ kind: "actor", at: n, node: "b", actorId, type: "@xstate.event", sessionId: "x", event: { type: "INC", n } });

describe("coalesce", () => {
  it("passes a batch under the limit through untouched", () => {
    const batch = [snap("a", 1), event("a", 2)];
    expect(coalesce(batch, 10, "n")).toBe(batch);
  });

  it("keeps only the newest snapshot per actor first, and says how many were left out", () => {
    const batch = [snap("a", 1), event("a", 2), snap("a", 3), snap("b", 4), snap("a", 5)];
    const out = coalesce(batch, 4, "n");
    expect(out.slice(0, -1)).toEqual([event("a", 2), snap("b", 4), snap("a", 5)]);
    expect(out.at(-1)).toMatchObject({ kind: "dropped", node: "n", count: 2 });
  });

  it("then drops the oldest events, never going over the limit", () => {
    const batch = Array.from({ length: 50 }, (_, i) => event("a", i));
    const out = coalesce(batch, 10, "n");
    expect(out).toHaveLength(10);
    expect(out[0]).toEqual(event("a", 41));
    expect(out.at(-1)).toMatchObject({ kind: "dropped", count: 41 });
  });
});
