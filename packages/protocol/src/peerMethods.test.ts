import { describe, expect, it } from "vitest";
import { RequestFrameSchema } from "./frames.js";
import { PEER_METHODS, PEER_SENDERS } from "./peerMethods.js";

describe("PEER_METHODS", () => {
  it("names every method a frame can carry, with a known sender rule, and a response for each request only", () => {
    for (const [name, spec] of Object.entries(PEER_METHODS)) {
      expect(RequestFrameSchema.safeParse({ t: "req", id: 1, method: name, body: null }).success, name).toBe(true);
      expect(Object.keys(PEER_SENDERS), name).toContain(spec.sender);
      expect("response" in spec, name).toBe(spec.kind === "request");
    }
  });

  it("only the API's entry points are open to any member; what changes ownership or placement has a rule", () => {
    const open = Object.entries(PEER_METHODS)
      .filter(([, spec]) => spec.sender === "member")
      .map(([name]) => name.split(".")[0]);
    expect(new Set(open)).toEqual(new Set(["actor", "workflow", "inspect"]));
    expect(PEER_METHODS["workflow.replica"].sender).toBe("owner");
    expect(PEER_METHODS["workflow.claimed"].sender).toBe("claimer");
    for (const m of ["host.spawn", "host.send", "host.ask", "host.stop", "host.holds"] as const) expect(PEER_METHODS[m].sender).toBe("supervisor");
    for (const m of ["sup.update", "sup.outcome", "sup.handoff"] as const) expect(PEER_METHODS[m].sender).toBe("host");
    expect(PEER_METHODS["inspect.events"].sender).toBe("reporter");
  });
});
