import { silentLogger } from "@shoal/protocol";
import { eventually, startTransport, type TestNode } from "@shoal/transport/testing";
import { afterEach, describe, expect, it } from "vitest";
import { Mesh } from "./Mesh.js";

const timing = { heartbeatMs: 50, suspectAfterMs: 200, downAfterMs: 400 };
const running: { node: TestNode; mesh: Mesh }[] = [];

async function start(name: string, seeds: string[] = [], options: { port?: number; id?: string } = {}) {
  const node = await startTransport(name, { ...timing, deadAfterMs: 400, backoff: { initialMs: 20, maxMs: 200 }, ...options });
  const mesh = new Mesh({ transport: node.transport, seeds, ...timing, logger: silentLogger });
  mesh.start();
  const entry = { node, mesh };
  running.push(entry);
  return entry;
}
const statuses = (mesh: Mesh): Record<string, string> =>
  Object.fromEntries(mesh.members().map((m) => [m.name, m.status]).sort());

afterEach(async () => {
  await Promise.all(running.splice(0).map(async ({ node, mesh }) => {
    await mesh.leave();
    await node.close();
  }));
});

describe("Mesh", () => {
  it("spreads membership by gossip: C joins through B and A learns of it", async () => {
    const a = await start("a");
    const b = await start("b", [a.node.address]);
    const c = await start("c", [b.node.address]);
    const all = { a: "up", b: "up", c: "up" };
    await eventually(() => [a, b, c].every(({ mesh }) => JSON.stringify(statuses(mesh)) === JSON.stringify(all)));
    for (const { mesh } of [a, b, c]) expect(statuses(mesh)).toEqual(all);
    // A full mesh: A dialed C itself, after hearing of it.
    await eventually(() => a.node.transport.connection(c.node.identity.id)?.isOpen === true);
  });

  it("marks a node that left down at once, everywhere", async () => {
    const a = await start("a");
    const b = await start("b", [a.node.address]);
    const c = await start("c", [a.node.address]);
    await eventually(() => Object.keys(statuses(c.mesh)).length === 3);
    const downs: string[] = [];
    a.mesh.on("down", (m) => downs.push(m.name));
    await b.mesh.leave();
    await eventually(() => statuses(a.mesh).b === "down" && statuses(c.mesh).b === "down", 300);
    expect(downs).toEqual(["b"]);
  });

  it("marks a node that vanished without a word down, and up again when it comes back", async () => {
    const a = await start("a");
    const b = await start("b", [a.node.address]);
    await eventually(() => statuses(a.mesh).b === "up");
    const port = Number(b.node.address.split(":")[1]);
    const id = b.node.identity.id;
    // Stop b as a crash would: no goodbye gossip, the port closes.
    running.splice(running.indexOf(b), 1);
    await b.node.close();
    await eventually(() => statuses(a.mesh).b === "down", 2_000);
    const b2 = await start("b", [a.node.address], { port, id });
    await eventually(() => statuses(a.mesh).b === "up" && statuses(b2.mesh).a === "up", 3_000);
    expect(b2.mesh.self.incarnation).toBeGreaterThan(0);
  });
});
