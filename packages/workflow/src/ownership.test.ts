import type { NodeIdentity } from "@shoal/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type OwnershipView, claimRefusal, compareOwnership, replicaRefusal, supersedes, takeoverOf } from "./ownership.js";
import { newWorkflowId } from "./workflowIds.js";

const node = (id: string): NodeIdentity => ({ id, name: id, address: "127.0.0.1:1", capabilities: [], tools: [], slots: 1 });
const WF = "wf_abcdef123456";

/** This node is "self"; it knows WF as `known`, gave copies to `holders`, sees `up` up. */
function view(known: { owner: string; epoch: number } | undefined, holders: string[] = [], up: string[] = []): OwnershipView {
  return { selfId: "self", ownership: (id) => (id === WF ? known : undefined), holdsCopy: (_id, n) => holders.includes(n), isUp: (n) => up.includes(n) };
}
const msg = (owner: string, epoch: number) => ({ workflow_id: WF, owner, epoch });

describe("workflow.claimed: only the holder of the copy claims, at the next epoch", () => {
  it("refuses a claim at epoch 999, a claim for someone else, and one from a node without the copy", () => {
    const mine = view({ owner: "self", epoch: 1 }, ["backup"]);
    expect(claimRefusal(mine, msg("rogue", 999), node("rogue"))).toMatch(/a takeover is at the next epoch only/);
    expect(claimRefusal(mine, msg("backup", 2), node("rogue"))).toMatch(/for node backup, not for itself/);
    expect(claimRefusal(mine, msg("rogue", 2), node("rogue"))).toMatch(/its copy is not with it/);
    expect(claimRefusal(mine, msg("backup", 2), node("backup"))).toBeUndefined();
  });

  it("lets through what changes nothing: old claims, claims of unknown workflows", () => {
    expect(claimRefusal(view({ owner: "b", epoch: 3 }), msg("b", 3), node("b"))).toBeUndefined();
    expect(claimRefusal(view({ owner: "b", epoch: 3 }), msg("c", 2), node("c"))).toBeUndefined();
    expect(claimRefusal(view(undefined), msg("c", 7), node("c"))).toBeUndefined();
  });

  it("property: whatever the epochs, nothing at more than one above the known epoch passes, and nothing for another node", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000 }), fc.integer({ min: 1, max: 2_000 }), fc.boolean(), fc.constantFrom("self", "other"), (known, epoch, forSelf, owner) => {
        const v = view({ owner, epoch: known }, ["peer"]);
        const refusal = claimRefusal(v, msg(forSelf ? "peer" : "someone", epoch), node("peer"));
        if (!forSelf || epoch > known + 1) expect(refusal).toBeDefined();
        else expect(refusal).toBeUndefined();
      }),
    );
  });
});

describe("workflow.replica: only the owner sends copies of its workflows", () => {
  it("refuses a copy sent in another node's name, or at an epoch past the next", () => {
    const copy = view({ owner: "owner", epoch: 1 }, [], ["owner"]);
    expect(replicaRefusal(copy, msg("owner", 1), node("rogue"))).toMatch(/as owned by node owner, not by itself/);
    expect(replicaRefusal(copy, msg("rogue", 999), node("rogue"))).toMatch(/next epoch only/);
  });

  it("a takeover of a copy kept here only once its owner is not up; of one owned here only by a holder of its copy", () => {
    expect(replicaRefusal(view({ owner: "owner", epoch: 1 }, [], ["owner"]), msg("rogue", 2), node("rogue"))).toMatch(/owned by node owner, which is up/);
    expect(replicaRefusal(view({ owner: "owner", epoch: 1 }, [], []), msg("taker", 2), node("taker"))).toBeUndefined();
    expect(replicaRefusal(view({ owner: "self", epoch: 1 }, ["backup"]), msg("rogue", 2), node("rogue"))).toMatch(/its copy is not with it/);
    expect(replicaRefusal(view({ owner: "self", epoch: 1 }, ["backup"]), msg("backup", 2), node("backup"))).toBeUndefined();
  });

  it("lets the owner's own copies through, and old or unknown ones (the store fences or takes them)", () => {
    expect(replicaRefusal(view({ owner: "owner", epoch: 2 }, [], ["owner"]), msg("owner", 2), node("owner"))).toBeUndefined();
    expect(replicaRefusal(view({ owner: "owner", epoch: 2 }, [], ["owner"]), msg("old", 1), node("old"))).toBeUndefined();
    expect(replicaRefusal(view(undefined), msg("new", 1), node("new"))).toBeUndefined();
  });

  it("a first copy at epoch 1 comes from the node its id names; a first copy at a later epoch cannot be checked", () => {
    const id = newWorkflowId("acceptor");
    const first = (owner: string, epoch: number) => ({ workflow_id: id, owner, epoch });
    expect(replicaRefusal(view(undefined), first("rogue", 1), node("rogue"))).toMatch(/the id names the node that accepted it/);
    expect(replicaRefusal(view(undefined), first("acceptor", 1), node("acceptor"))).toBeUndefined();
    expect(replicaRefusal(view(undefined), first("taker", 2), node("taker"))).toBeUndefined();
  });

  it("property: a copy that names another owner than its sender never passes", () => {
    fc.assert(
      fc.property(fc.option(fc.record({ owner: fc.constantFrom("self", "a", "b"), epoch: fc.integer({ min: 1, max: 50 }) }), { nil: undefined }), fc.integer({ min: 1, max: 60 }), (known, epoch) => {
        expect(replicaRefusal(view(known, ["a", "b"], ["a", "b"]), msg("a", epoch), node("b"))).toBeDefined();
      }),
    );
  });
});

describe("compareOwnership: the highest epoch owns", () => {
  it("names each case", () => {
    expect(compareOwnership(undefined, { owner: "a", epoch: 1 })).toBe("unknown");
    expect(compareOwnership({ owner: "a", epoch: 1 }, { owner: "b", epoch: 2 })).toBe("newer");
    expect(compareOwnership({ owner: "a", epoch: 2 }, { owner: "a", epoch: 2 })).toBe("same");
    expect(compareOwnership({ owner: "a", epoch: 2 }, { owner: "b", epoch: 2 })).toBe("rival");
    expect(compareOwnership({ owner: "b", epoch: 3 }, { owner: "a", epoch: 2 })).toBe("stale");
  });

  it("property: of two claims on one workflow, exactly one order says newer, unless they are at one epoch; news never supersedes itself", () => {
    const claim = fc.record({ owner: fc.constantFrom("a", "b", "c"), epoch: fc.integer({ min: 1, max: 20 }) });
    fc.assert(
      fc.property(claim, claim, (x, y) => {
        expect(supersedes(x, x)).toBe(false);
        if (x.epoch === y.epoch) expect([supersedes(x, y), supersedes(y, x)]).toEqual([false, false]);
        else expect(supersedes(x, y)).not.toBe(supersedes(y, x));
        // Stale and newer mirror each other: what replaces y is what y is stale against.
        expect(compareOwnership(y, x) === "newer").toBe(compareOwnership(x, y) === "stale");
      }),
    );
  });
});

describe("takeoverOf: the holder of a copy takes over a down owner's workflow, at the next epoch", () => {
  const copy = { owner: "owner", epoch: 3, backups: ["first", "self", "last"] };
  const view = (down: string[], extra: { minority?: boolean; settled?: boolean } = {}) => ({ minority: false, settled: true, ...extra, isDown: (n: string) => down.includes(n) });

  it("takes it at epoch + 1 once the owner and every backup before it are down", () => {
    expect(takeoverOf(copy, "self", view(["owner", "first"]))).toEqual({ epoch: 4 });
    expect(takeoverOf(copy, "first", view(["owner"]))).toEqual({ epoch: 4 });
  });

  it("leaves it to a backup before it that is up, to an owner that is up, and to the majority when on a minority side", () => {
    expect(takeoverOf(copy, "self", view(["owner"]))).toBeUndefined();
    expect(takeoverOf(copy, "self", view(["first"]))).toBeUndefined();
    expect(takeoverOf(copy, "self", view(["owner", "first"], { minority: true }))).toBeUndefined();
  });

  it("waits while its majority is not settled (right after a heal its down marks may be stale)", () => {
    expect(takeoverOf(copy, "self", view(["owner", "first"], { settled: false }))).toBe("defer");
  });
});
