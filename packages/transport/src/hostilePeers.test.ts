import { CloseCodes, NodeIdentitySchema, createCodec } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "node:net";
import { WebSocket } from "ws";
import { eventually, rawPeer, rawSocketPeer, recordingLogger, TEST_METHODS, transportPool } from "./testing/fixtures.js";

const pool = transportPool(TEST_METHODS);
const node = pool.node;
afterEach(pool.closeAll);

/** A socket on /mesh that never says anything, and what happened to it. */
async function idleSocket(address: string) {
  const ws = new WebSocket(`ws://${address}/mesh`);
  const events: string[] = [];
  ws.on("error", () => {});
  const outcome = new Promise<{ opened: boolean; status?: number; body?: string; closeCode?: number }>((resolve) => {
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (c: Buffer) => {
        body += c.toString();
      });
      res.on("end", () => resolve({ opened: false, status: res.statusCode ?? 0, body }));
    });
    ws.once("open", () => {
      events.push("open");
      ws.once("close", (code) => resolve({ opened: true, closeCode: code }));
    });
    ws.once("error", () => resolve({ opened: false }));
  });
  await new Promise<void>((resolve) => {
    ws.once("open", () => resolve());
    ws.once("unexpected-response", () => resolve());
    ws.once("error", () => resolve());
  });
  return { ws, events, outcome };
}

describe("a hostile peer", () => {
  it("cannot crash the node with a malformed frame followed at once by one over the frame limit", async () => {
    const a = await node("a", { maxFrameBytes: 128 * 1024 });
    const peer = await rawPeer(a.address);
    peer.sendBytes(Buffer.from([0xc1, 0xc1, 0xc1])); // not MessagePack: the handshake fails (4000)
    peer.sendBytes(Buffer.alloc(512 * 1024, 1)); // over every limit, in the same breath
    const { code } = await peer.closed;
    expect([CloseCodes.HANDSHAKE_FAILED, CloseCodes.TOO_BIG]).toContain(code);
    // Still serving: a real node connects and talks.
    const b = await node("b");
    a.transport.handle("echo", (body) => body);
    const conn = await b.transport.dial(a.address);
    await expect(conn.request("echo", "alive")).resolves.toBe("alive");
  });

  it("cannot crash the node with a frame over the limit that arrives after a failed handshake let go of the socket", async () => {
    const a = await node("a");
    const peer = await rawSocketPeer(a.address);
    expect(peer.answer).toMatch(/^HTTP\/1.1 101/);
    peer.write(Buffer.from([0xc1]));
    await eventually(() => a.transport.stats.handshakeFailures === 1);
    peer.write(Buffer.alloc(16), 40 * 1024 * 1024); // a header that announces 40 MiB
    await peer.closed;
    const b = await node("b");
    a.transport.handle("echo", (body) => body);
    await expect((await b.transport.dial(a.address)).request("echo", "alive")).resolves.toBe("alive");
  });

  it("answers an upgrade ws refuses (no key) with 400 and the JSON error body", async () => {
    const a = await node("a");
    const [host, port] = a.address.split(":");
    const answer = await new Promise<string>((resolve) => {
      const sock = connect({ host, port: Number(port) }, () => sock.write(`GET /mesh HTTP/1.1\r\nHost: ${a.address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`));
      let text = "";
      sock.on("data", (d: Buffer) => {
        text += d.toString();
      });
      sock.on("close", () => resolve(text));
      sock.on("error", () => resolve(text));
    });
    expect(answer).toMatch(/^HTTP\/1.1 400/);
    expect(answer).toMatch(/content-type: application\/json/i);
    expect(JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4))).toMatchObject({ error: { code: "SHOAL_ERR_HANDSHAKE_FAILED" } });
  });

  it("frames that arrive while the node is closing the connection do not crash it (found by the fuzzer)", async () => {
    const a = await node("a");
    const peer = await rawPeer(a.address);
    await peer.handshake();
    await eventually(() => a.transport.connection(peer.identity.id) !== undefined);
    void a.transport.connection(peer.identity.id)?.close(CloseCodes.NORMAL, "bye");
    // The peer has not seen the close yet: everything it sends now reaches a closing connection.
    for (let i = 0; i < 50; i++) peer.send({ t: "cast", method: "nobody-handles-this", body: i });
    await peer.closed;
    const b = await node("b");
    a.transport.handle("echo", (body) => body);
    await expect((await b.transport.dial(a.address)).request("echo", "alive")).resolves.toBe("alive");
  });

  it("reads only small frames before the handshake, and full-size frames after it", async () => {
    const a = await node("a", { maxHandshakeFrameBytes: 4 * 1024 });
    const before = await rawPeer(a.address);
    before.sendBytes(createCodec().encode({ t: "cast", method: "x", body: "y".repeat(8 * 1024) }));
    expect((await before.closed).code).toBe(CloseCodes.TOO_BIG);

    const got: unknown[] = [];
    a.transport.handleCast("big", (body) => got.push(body));
    const after = await rawPeer(a.address);
    await after.handshake();
    after.send({ t: "cast", method: "big", body: "z".repeat(64 * 1024) });
    await eventually(() => got.length === 1);
    expect((got[0] as string).length).toBe(64 * 1024);
  });

  it("cannot hold more unfinished handshakes than the caps; the next gets a 503 with the error body; the deadline frees them", async () => {
    const a = await node("a", { maxPendingPerAddress: 3, maxPendingConnections: 100, handshakeTimeoutMs: 400 });
    const idle = await Promise.all([1, 2, 3].map(() => idleSocket(a.address)));
    expect(idle.every((s) => s.events.includes("open"))).toBe(true);
    const refused = await (await idleSocket(a.address)).outcome;
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body ?? "")).toMatchObject({ error: { code: "SHOAL_ERR_OVERLOADED", message: expect.stringContaining("--max-pending-per-address") } });
    expect(a.transport.stats.refusedConnections).toBe(1);
    // The handshake deadline closes the idle ones, which frees their places.
    for (const s of idle) expect((await s.outcome).closeCode).toBe(CloseCodes.HANDSHAKE_TIMEOUT);
    const peer = await rawPeer(a.address);
    await peer.handshake();
  });

  it("counts unfinished handshakes from all addresses against --max-pending-connections", async () => {
    const a = await node("a", { maxPendingPerAddress: 100, maxPendingConnections: 2 });
    await Promise.all([1, 2].map(() => idleSocket(a.address)));
    const refused = await (await idleSocket(a.address)).outcome;
    expect(refused.status).toBe(503);
    expect(refused.body).toContain("--max-pending-connections");
  });

  it("cannot take over the id of a connected node: the new connection is refused (4010), the live one kept", async () => {
    const a = await node("a");
    const b = await node("b");
    a.transport.handle("who", (_body, from) => from.name);
    const conn = await b.transport.dial(a.address);
    await eventually(() => a.transport.connection(b.identity.id) !== undefined);
    const live = a.transport.connection(b.identity.id);
    const impostor = await rawPeer(a.address, { id: b.identity.id, name: "b" });
    await expect(impostor.handshake()).rejects.toThrow();
    expect((await impostor.closed).code).toBe(CloseCodes.PEER_ID_IN_USE);
    expect(a.transport.connection(b.identity.id)).toBe(live);
    await expect(conn.request("who", null)).resolves.toBe("b");
  });

  it("gets SHOAL_ERR_OVERLOADED for requests past --max-peer-requests, and answers again once some are done", async () => {
    const a = await node("a", { maxPeerRequests: 2 });
    const b = await node("b");
    const held: (() => void)[] = [];
    a.transport.handle("hold", () => new Promise<string>((resolve) => held.push(() => resolve("done"))));
    const conn = await b.transport.dial(a.address);
    const first = [conn.request("hold", null), conn.request("hold", null)];
    await expect(conn.request("hold", null)).rejects.toMatchObject({ code: "SHOAL_ERR_OVERLOADED" });
    expect(a.transport.stats.overloadedRequests).toBe(1);
    await eventually(() => held.length === 2);
    for (const release of held) release();
    await expect(Promise.all(first)).resolves.toEqual(["done", "done"]);
    a.transport.handle("echo", (body) => body);
    await expect(conn.request("echo", 1)).resolves.toBe(1);
  });

  it("gets SHOAL_ERR_BAD_SCHEMA with the path for a request body a handler's schema refuses, not a handler failure", async () => {
    const lines: Record<string, unknown>[] = [];
    const a = await node("a", { logger: recordingLogger(lines) });
    const b = await node("b");
    a.transport.handle("strict", (body) => NodeIdentitySchema.parse(body).name);
    const conn = await b.transport.dial(a.address);
    await expect(conn.request("strict", { id: "x", name: 7 })).rejects.toMatchObject({ code: "SHOAL_ERR_BAD_SCHEMA", path: ["name"] });
    expect(lines.filter((l) => l.level === "error")).toEqual([]);
  });

  it("turns a flood of failed handshakes into a few log lines and a full count", async () => {
    const lines: Record<string, unknown>[] = [];
    const a = await node("a", { logger: recordingLogger(lines), maxPendingPerAddress: 1_000 });
    const peers = await Promise.all(Array.from({ length: 40 }, () => rawPeer(a.address)));
    for (const p of peers) p.sendBytes(Buffer.from("not msgpack"));
    await Promise.all(peers.map((p) => p.closed));
    await eventually(() => a.transport.stats.handshakeFailures === 40);
    const logged = lines.filter((l) => typeof l.msg === "string" && l.msg.startsWith("handshake failed"));
    expect(logged.length).toBeGreaterThan(0);
    expect(logged.length).toBeLessThanOrEqual(10);
  });
});
