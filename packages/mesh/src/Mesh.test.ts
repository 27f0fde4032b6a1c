import { MAX_INCARNATION, type Member, silentLogger } from "@shoal/protocol";
import { eventually, rawPeer, startTransport, type TestNode } from "@shoal/transport/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Mesh, type MeshOptions } from "./Mesh.js";

const timing = { heartbeatMs: 50, suspectAfterMs: 200, downAfterMs: 400 };
const running: { node: TestNode; mesh: Mesh }[] = [];

type MeshExtras = Pick<MeshOptions, "maxMembers" | "incarnation" | "onIncarnation">;

async function start(name: string, seeds: string[] = [], options: { port?: number; id?: string } & MeshExtras = {}) {
  const { maxMembers, incarnation, onIncarnation, ...transportOptions } = options;
  const node = await startTransport(name, { ...timing, deadAfterMs: 400, backoff: { initialMs: 20, maxMs: 200 }, ...transportOptions });
  const mesh = new Mesh({ transport: node.transport, seeds, ...timing, maxMembers, incarnation, onIncarnation, logger: silentLogger });
  mesh.start();
  const entry = { node, mesh };
  running.push(entry);
  return entry;
}
const statuses = (mesh: Mesh): Record<string, string> =>
  Object.fromEntries(mesh.members().map((m) => [m.name, m.status]).sort());
/** Members nobody runs, at loopback ports below the ephemeral range, where nothing listens. */
const invented = (n: number): Member[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `invented-${i}`,
    name: `invented-${i}`,
    address: `127.0.0.1:${10_000 + i}`,
    capabilities: [],
    tools: ["llm"],
    slots: 8,
    incarnation: MAX_INCARNATION,
    status: "up" as const,
    running: 0,
  }));
/** A crash as its peers see it: no goodbye gossip, the port closes. */
async function crash(entry: { node: TestNode; mesh: Mesh }) {
  running.splice(running.indexOf(entry), 1);
  await entry.node.close();
}

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

  it("a wall-clock step an hour ahead, then back, marks no peer suspect or down: silence is measured on the monotonic clock", async () => {
    const a = await start("a");
    const b = await start("b", [a.node.address]);
    const changes: string[] = [];
    a.mesh.on("suspect", (m) => changes.push(`suspect ${m.name}`));
    a.mesh.on("down", (m) => changes.push(`down ${m.name}`));
    await eventually(() => statuses(a.mesh).b === "up" && statuses(b.mesh).a === "up");
    const wall = Date.now.bind(Date);
    try {
      for (const stepMs of [3_600_000, -3_600_000]) {
        vi.spyOn(Date, "now").mockImplementation(() => wall() + stepMs);
        // Past downAfterMs, with gossip rounds and detector checks in between.
        await new Promise((r) => setTimeout(r, 2 * timing.downAfterMs));
        expect(statuses(a.mesh)).toEqual({ a: "up", b: "up" });
        expect(statuses(b.mesh)).toEqual({ a: "up", b: "up" });
      }
    } finally {
      vi.restoreAllMocks();
    }
    expect(changes).toEqual([]);
    expect(a.mesh.members().find((m) => m.name === "b")?.lastSeenMs).toBeLessThan(timing.suspectAfterMs);
  });

  it("marks a node that left down at once, everywhere", async () => {
    const a = await start("a");
    const b = await start("b", [a.node.address]);
    const c = await start("c", [a.node.address]);
    // Linked to b: a farewell relayed by a is b's record at an incarnation c never heard from b
    // itself, which c does not take (only a member raises its own); unlinked, c learns it from
    // its own failed dial, after up to downAfterMs.
    await eventually(() => c.node.transport.connection(b.node.identity.id)?.isOpen === true && b.node.transport.connection(c.node.identity.id)?.isOpen === true);
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
    await crash(b);
    await eventually(() => statuses(a.mesh).b === "down", 2_000);
    const b2 = await start("b", [a.node.address], { port, id });
    await eventually(() => statuses(a.mesh).b === "up" && statuses(b2.mesh).a === "up", 3_000);
    expect(b2.mesh.self.incarnation).toBeGreaterThan(0);
  });

  it("holds at most maxMembers rows against a frame of 6,000 invented members, merged as one batch, the real members up", async () => {
    const a = await start("a", [], { maxMembers: 20 });
    const b = await start("b", [a.node.address], { maxMembers: 20 });
    await eventually(() => statuses(a.mesh).b === "up" && statuses(b.mesh).a === "up");
    const peer = await rawPeer(a.node.address, { name: "liar" });
    await peer.handshake();
    await eventually(() => statuses(a.mesh).liar === "up");
    const batches: number[] = [];
    let joined = 0;
    a.mesh.on("changes", (changes) => batches.push(changes.length));
    a.mesh.on("up", () => joined++);
    peer.send({ t: "gossip", members: invented(6_000) });
    await eventually(() => a.mesh.stats.refused > 0);
    // One frame, one batch: every listener that works per table ran once for it.
    expect(batches[0]).toBe(joined);
    expect(joined).toBe(20 - 3);
    expect(a.mesh.members()).toHaveLength(20);
    // Never at the incarnation the liar gave them: only a member itself raises its own.
    expect(a.mesh.members().filter((m) => m.name.startsWith("invented")).every((m) => m.incarnation === 0)).toBe(true);
    // B hears of them from A, and caps its own table too.
    await eventually(() => b.mesh.stats.refused > 0 || b.mesh.members().length === 20);
    expect(b.mesh.members().length).toBeLessThanOrEqual(20);
    // Nobody answers at the invented addresses: down, then room for new members again.
    await eventually(() => a.mesh.members().filter((m) => m.name.startsWith("invented")).every((m) => m.status === "down"));
    expect(statuses(a.mesh)).toMatchObject({ a: "up", b: "up" });
    expect(statuses(b.mesh)).toMatchObject({ a: "up", b: "up" });
    const c = await start("c", [a.node.address], { maxMembers: 20 });
    await eventually(() => statuses(a.mesh).c === "up" && statuses(c.mesh).a === "up");
    expect(a.mesh.stats.evicted).toBeGreaterThan(0);
    expect(c.mesh.members().length).toBeLessThanOrEqual(20);
  });

  it("keeps a member at the incarnation it sent itself, whatever a third party claims, and still refutes a real suspicion", async () => {
    const raised: number[] = [];
    const a = await start("a");
    const b = await start("b", [a.node.address], { onIncarnation: (n) => raised.push(n) });
    await eventually(() => statuses(a.mesh).b === "up" && statuses(b.mesh).a === "up");
    const victim = b.mesh.self;
    const peer = await rawPeer(a.node.address, { name: "liar" });
    await peer.handshake();
    const atB = await rawPeer(b.node.address, { name: "liar-b" });
    await atB.handshake();
    const lie: Member = { ...victim, incarnation: MAX_INCARNATION, status: "down" };
    peer.send({ t: "gossip", members: [lie] });
    atB.send({ t: "gossip", members: [lie] });
    await eventually(() => a.mesh.stats.unverified > 0 && b.mesh.stats.forged > 0);
    expect(a.mesh.member(victim.id)).toMatchObject({ status: "up", incarnation: 0 });
    expect(b.mesh.self).toMatchObject({ status: "up", incarnation: 0 });
    expect(raised).toEqual([]);
    // A suspicion at the incarnation A knows is news A takes; B outbids it, by one.
    peer.send({ t: "gossip", members: [{ ...victim, status: "suspect" }] });
    await eventually(() => a.mesh.member(victim.id)?.incarnation === 1 && a.mesh.member(victim.id)?.status === "up");
    expect(b.mesh.self.incarnation).toBe(1);
    expect(raised).toEqual([1]);
  });

  it("refuses gossip that says of another node what only it says (tools, slots, address), or of the sender other than its hello", async () => {
    const a = await start("a");
    const b = await start("b", [a.node.address]);
    await eventually(() => statuses(a.mesh).b === "up" && statuses(b.mesh).a === "up");
    const honest = a.mesh.member(b.node.identity.id) as Member;
    const peer = await rawPeer(a.node.address, { name: "liar" });
    await peer.handshake();
    peer.send({ t: "gossip", members: [{ ...honest, slots: 100_000, tools: ["evil"] }, { ...honest, address: "127.0.0.1:9" }] });
    expect(await peer.next("error")).toMatchObject({ error: { code: "SHOAL_ERR_PEER_FORBIDDEN", message: /liar may not send gossip: its record of b says tools \[evil\]/ } });
    peer.send({ t: "gossip", members: [{ ...peer.identity, name: "someone-else", incarnation: 0, status: "up", running: 0 }] });
    expect(await peer.next("error")).toMatchObject({ error: { message: /its own record says name someone-else other than its hello/ } });
    expect(a.node.transport.stats.forbiddenMessages).toBe(3);
    // A third party may still say the node is suspect: the status only.
    peer.send({ t: "gossip", members: [{ ...honest, status: "suspect" }] });
    await eventually(() => a.mesh.member(b.node.identity.id)?.incarnation === 1);
    expect(a.mesh.member(b.node.identity.id)).toMatchObject({ slots: honest.slots, tools: honest.tools, address: honest.address });
    expect(a.node.transport.stats.forbiddenMessages).toBe(3);
  });

  it("a restarted node starts at the incarnation it is given; at one below what peers know it stays down", async () => {
    const a = await start("a");
    const b = await start("b", [a.node.address], { incarnation: 7 });
    await eventually(() => a.mesh.member(b.node.identity.id)?.incarnation === 7);
    const port = Number(b.node.address.split(":")[1]);
    const id = b.node.identity.id;
    await crash(b);
    await eventually(() => statuses(a.mesh).b === "down", 2_000);
    // Its last life forgotten: A's record of it, at 7, is not something it raises itself to.
    const forgetful = await start("b", [a.node.address], { port, id });
    await eventually(() => forgetful.mesh.stats.forged > 0, 3_000);
    expect(statuses(a.mesh).b).toBe("down");
    await crash(forgetful);
    const b2 = await start("b", [a.node.address], { port, id, incarnation: 8 });
    await eventually(() => statuses(a.mesh).b === "up" && statuses(b2.mesh).a === "up", 3_000);
    expect(a.mesh.member(id)?.incarnation).toBe(8);
  });
});
