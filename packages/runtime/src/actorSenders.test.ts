import type { NodeIdentity } from "@shoal/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ActorSendersView, holdsRefusal, hostRefusal, supervisorRefusal } from "./actorSenders.js";

const node = (id: string, name = id): NodeIdentity => ({ id, name, address: "127.0.0.1:1", capabilities: [], tools: [], slots: 1 });

/** This node is "here"; it hosts `hosted` (actor -> supervisor id) and supervises actors with `placements` (actor -> epoch -> node id). */
function view(hosted: Record<string, string> = {}, placements: Record<string, Record<number, string>> = {}): ActorSendersView {
  return {
    selfName: "here",
    hostedFor: (id) => hosted[id],
    placedAt: (id, epoch) => (placements[id] ? (placements[id][epoch] ?? null) : undefined),
  };
}

describe("host.*: only the supervisor steers an actor", () => {
  it("refuses a spawn or a message for an actor supervised by another node, or naming another supervisor", () => {
    expect(supervisorRefusal(view(), { actorId: "sup~1", supervisor: "rogue" }, node("rogue"))).toMatch(/supervised by sup/);
    expect(supervisorRefusal(view(), { actorId: "sup~1", supervisor: "other" }, node("s", "sup"))).toMatch(/names node other as the supervisor/);
    expect(supervisorRefusal(view(), { actorId: "sup~1", supervisor: "s" }, node("s", "sup"))).toBeUndefined();
  });

  it("host.holds: a node asks only about actors named after it", () => {
    expect(holdsRefusal({ actors: [{ actorId: "sup~1" }, { actorId: "sup~2" }] }, node("s", "sup"))).toBeUndefined();
    expect(holdsRefusal({ actors: [{ actorId: "sup~1" }, { actorId: "other~2" }] }, node("s", "sup"))).toMatch(/actor other~2 is supervised by other/);
  });

  it("an actor hosted here takes orders only from the node that placed it, even from one of the same name", () => {
    const v = view({ "sup~1": "s" });
    expect(supervisorRefusal(v, { actorId: "sup~1" }, node("s", "sup"))).toBeUndefined();
    expect(supervisorRefusal(v, { actorId: "sup~1" }, node("impostor", "sup"))).toMatch(/runs here for supervisor node s/);
  });

  it("property: a sender whose name is not the actor's prefix never passes", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z]{1,8}$/), fc.stringMatching(/^[a-z]{1,8}$/), fc.boolean(), (named, sender, hosted) => {
        fc.pre(named !== sender);
        const v = view(hosted ? { [`${named}~1`]: sender } : {});
        expect(supervisorRefusal(v, { actorId: `${named}~1`, supervisor: sender }, node(sender))).toBeDefined();
      }),
    );
  });
});

describe("sup.*: only the host reports on an actor", () => {
  it("refuses reports on actors supervised elsewhere, from a node it was not placed on, or at an epoch it never had", () => {
    const v = view({}, { "here~1": { 1: "h1", 2: "h2" } });
    expect(hostRefusal(v, { actorId: "other~1", epoch: 1 }, node("h1"))).toMatch(/supervised by other, not here/);
    expect(hostRefusal(v, { actorId: "here~1", epoch: 2 }, node("rogue"))).toMatch(/placed on node h2 at epoch 2/);
    expect(hostRefusal(v, { actorId: "here~1", epoch: 999 }, node("h2"))).toMatch(/never placed at epoch 999/);
  });

  it("lets through the current and the old placements (the supervisor drops stale ones), and actors it forgot", () => {
    const v = view({}, { "here~1": { 1: "h1", 2: "h2" } });
    expect(hostRefusal(v, { actorId: "here~1", epoch: 2 }, node("h2"))).toBeUndefined();
    expect(hostRefusal(v, { actorId: "here~1", epoch: 1 }, node("h1"))).toBeUndefined();
    expect(hostRefusal(v, { actorId: "here~gone", epoch: 4 }, node("anyone"))).toBeUndefined();
  });
});
