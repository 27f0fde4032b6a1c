import { type RuntimeNode, converged, releaseSlowOn, runs, startRuntimeNode } from "@shoal/runtime/testing";
import { eventually } from "@shoal/transport/testing";
import { afterEach, describe, expect, it } from "vitest";
import { FaultProxy } from "./FaultProxy.js";
import { meshDialerName } from "./meshDialerName.js";

/**
 * The runtime's answers to slow and one-way links, with its nodes in this process (so the test
 * sees their supervisors and hosts) and every link between them through the FaultProxy: each
 * node advertises its proxy port, so whichever side dials, the bytes pass the proxy.
 */
const proxy = new FaultProxy(meshDialerName);
const nodes: RuntimeNode[] = [];

async function cluster(specs: { name: string; slots: number }[]): Promise<RuntimeNode[]> {
  const started: RuntimeNode[] = [];
  for (const spec of specs) {
    const advertise = proxy.address(spec.name);
    const seed = started[0];
    const n = await startRuntimeNode(spec.name, { slots: spec.slots, advertise, seeds: seed ? [seed.node.address] : [] });
    proxy.forward(spec.name, n.node.port);
    started.push(n);
    nodes.push(n);
  }
  await converged(started);
  // Every link between two of them passes the proxy (none went around it to a real port).
  expect(proxy.connections().filter((c) => started.some((n) => n.name === c.from)).length).toBeGreaterThanOrEqual(started.length - 1);
  return started;
}

afterEach(async () => {
  proxy.heal();
  await Promise.all(nodes.splice(0).map((n) => n.close()));
  runs.length = 0;
});

describe("runtime over faulty links (in-process nodes, links through a TCP proxy)", () => {
  it("an ask over a slow link times out with SHOAL_ERR_ASK_TIMEOUT; the late event still lands and the actor stays usable", async () => {
    for (const name of ["ra", "rb"]) await proxy.listen(name);
    const [a, b] = await cluster([
      { name: "ra", slots: 0 },
      { name: "rb", slots: 1 },
    ]);
    const actor = a!.runtime.spawn("counter", {});
    await actor.ask({ type: "INC" });
    // What the host sends back comes 300 ms late: the answer misses a 100 ms ask.
    proxy.set("rb", "ra", { delayMs: 300 });
    await expect(actor.ask({ type: "INC" }, { timeoutMs: 100 })).rejects.toMatchObject({ code: "SHOAL_ERR_ASK_TIMEOUT" });
    proxy.heal();
    // An ask that timed out may or may not have been taken: here it was, once.
    await eventually(() => (b!.runtime.host.view(actor.id).context as { count: number }).count === 2);
    expect((await actor.ask({ type: "INC" }, { timeoutMs: 2_000 })).context).toMatchObject({ count: 3 });
  });

  it("a host cut off one way runs its copy on while the actor moves; its late result is discarded: the parent sees one outcome", async () => {
    for (const name of ["pa", "pb", "pc"]) await proxy.listen(name);
    const [a] = await cluster([
      { name: "pa", slots: 0 },
      { name: "pb", slots: 1 },
      { name: "pc", slots: 1 },
    ]);
    const outcomes: string[] = [];
    const ref = a!.runtime.spawn("slow", {});
    ref.done.then(
      (o) => outcomes.push(String(o)),
      (e: { code: string }) => outcomes.push(`error ${e.code}`),
    );
    await eventually(() => runs.length === 1);
    const cut = runs[0]!.node;
    // Everything the host sends is held: to the rest of the mesh it is gone, while it still hears
    // them, so it has no reason to stop its copy, which runs on.
    proxy.set(cut, "*", { cut: "drop" });
    await eventually(() => runs.length === 2, 5_000);
    expect(runs[1]!.node).not.toBe(cut);
    const staleBefore = a!.runtime.supervisor.staleMessages;
    // The old copy finishes while cut off, then the link heals and its outcome arrives late.
    releaseSlowOn(cut);
    proxy.heal();
    await eventually(() => a!.runtime.supervisor.staleMessages > staleBefore, 5_000);
    expect(outcomes).toEqual([]);
    releaseSlowOn(runs[1]!.node);
    await ref.done;
    expect(outcomes).toEqual([`finished on ${runs[1]!.node}`]);
  });
});
