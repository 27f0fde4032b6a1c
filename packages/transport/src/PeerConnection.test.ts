import { CloseCodes, type Frame } from "@shoal/protocol";
import { pack } from "msgpackr";
import { afterEach, describe, expect, it, vi } from "vitest";
import { eventually, rawPeer, TEST_METHODS, transportPool } from "./testing/fixtures.js";

const pool = transportPool(TEST_METHODS);
const node = pool.node;
afterEach(pool.closeAll);

async function pingWorks(peer: Awaited<ReturnType<typeof rawPeer>>) {
  peer.send({ t: "ping", ts: 42 });
  expect(await peer.next("pong")).toEqual({ t: "pong", ts: 42 });
}

describe("PeerConnection: bad frames", () => {
  it("answers bytes that are not MessagePack with an error frame, counts them, stays open", async () => {
    const a = await node("a");
    const peer = await rawPeer(a.address);
    await peer.handshake();
    peer.sendBytes(Uint8Array.of(0x92, 0x01));
    expect(await peer.next("error")).toMatchObject({ error: { code: "SHOAL_ERR_BAD_FRAME" } });
    expect(a.transport.stats.badFrames).toBe(1);
    await pingWorks(peer);
  });

  it("answers a frame of the wrong schema with SHOAL_ERR_BAD_SCHEMA naming the path", async () => {
    const a = await node("a");
    const peer = await rawPeer(a.address);
    await peer.handshake();
    peer.sendBytes(pack({ t: "gossip", members: [{ id: 1 }] }));
    const reply = (await peer.next("error")) as Extract<Frame, { t: "error" }>;
    expect(reply.error.code).toBe("SHOAL_ERR_BAD_SCHEMA");
    expect(reply.error.path).toEqual(["members", 0, "id"]);
    peer.sendBytes(pack({ t: "no-such-frame" }));
    expect(await peer.next("error")).toMatchObject({ error: { code: "SHOAL_ERR_BAD_SCHEMA" } });
    peer.sendBytes("a text message");
    expect(await peer.next("error")).toMatchObject({ error: { code: "SHOAL_ERR_BAD_FRAME" } });
    peer.send({ t: "hello", v: 1, cluster: "test", node: peer.identity, nonce: "0".repeat(64) });
    expect(await peer.next("error")).toMatchObject({ error: { code: "SHOAL_ERR_BAD_FRAME", message: /unexpected hello/ } });
    expect(a.transport.stats.badFrames).toBe(4);
    await pingWorks(peer);
  });

  it("closes only that connection with 1009 on an oversized frame; the node keeps serving others", async () => {
    const a = await node("a", { maxFrameBytes: 64 * 1024 });
    const peer = await rawPeer(a.address);
    await peer.handshake();
    peer.sendBytes(new Uint8Array(100 * 1024));
    expect((await peer.closed).code).toBe(CloseCodes.TOO_BIG);
    const b = await node("b");
    a.transport.handle("hi", () => "hello");
    const conn = await b.transport.dial(a.address);
    await expect(conn.request("hi", null)).resolves.toBe("hello");
  });
});

describe("PeerConnection: heartbeats", () => {
  it("answers pings and measures round trips", async () => {
    const a = await node("a", { heartbeatMs: 20 });
    const b = await node("b", { heartbeatMs: 20 });
    const conn = await b.transport.dial(a.address);
    await eventually(() => conn.rttMs !== undefined);
    expect(conn.rttMs).toBeGreaterThanOrEqual(0);
  });

  it("closes a connection whose peer stops answering (a hung box) with 4005", async () => {
    const a = await node("a", { heartbeatMs: 20, deadAfterMs: 200 });
    const peer = await rawPeer(a.address);
    await peer.handshake();
    // The raw peer never answers pings and sends nothing: connection open, no answers.
    expect((await peer.closed).code).toBe(CloseCodes.HEARTBEAT_TIMEOUT);
  });
});

describe("PeerConnection: wall-clock steps", () => {
  afterEach(() => vi.restoreAllMocks());

  it("a wall-clock step (NTP, date -s) closes no link and times out no request: heartbeats and timeouts are monotonic", async () => {
    const a = await node("a", { heartbeatMs: 20, deadAfterMs: 300 });
    const b = await node("b", { heartbeatMs: 20, deadAfterMs: 300 });
    a.transport.handle("slow", () => new Promise((r) => setTimeout(() => r("late"), 400)));
    const conn = await b.transport.dial(a.address);
    const wall = Date.now.bind(Date);
    for (const stepMs of [3_600_000, -3_600_000]) {
      const answer = conn.request("slow", null, { timeoutMs: 2_000 });
      vi.spyOn(Date, "now").mockImplementation(() => wall() + stepMs);
      await expect(answer).resolves.toBe("late");
      // Past deadAfterMs, many heartbeats after the step: both ends still up.
      await new Promise((r) => setTimeout(r, 400));
      expect(conn.isOpen).toBe(true);
      expect(a.transport.connections().every((c) => c.isOpen)).toBe(true);
      vi.restoreAllMocks();
    }
  });
});

/** Makes the raw peer stop reading its socket for good, as a wedged process would. */
function stopReading(peer: Awaited<ReturnType<typeof rawPeer>>) {
  const socket = (peer.ws as unknown as { _socket: import("node:net").Socket })._socket;
  socket.removeAllListeners("data");
  socket.pause();
}

describe("PeerConnection: backpressure", () => {
  it("bounds memory for a peer that stops reading, and refuses or drops what does not fit", async () => {
    const highWaterBytes = 256 * 1024;
    const maxQueueBytes = 1024 * 1024;
    const a = await node("a", { highWaterBytes, maxQueueBytes, heartbeatMs: 0, stallTimeoutMs: 60_000 });
    const peer = await rawPeer(a.address);
    await peer.handshake();
    // Stop reading: the kernel buffers fill, then ws's buffer, then our queue.
    stopReading(peer);
    await eventually(() => a.transport.connections().length === 1);
    const conn = a.transport.connections()[0];
    if (!conn) throw new Error("no connection");
    const body = "x".repeat(64 * 1024);
    let refused = 0;
    let peak = 0;
    for (let i = 0; i < 2000 && refused === 0; i++) {
      try {
        conn.send({ t: "req", id: i, method: "m", body });
      } catch (err) {
        expect(err).toMatchObject({ code: "SHOAL_ERR_BACKPRESSURE" });
        refused++;
      }
      peak = Math.max(peak, conn.queuedBytes + conn.bufferedBytes);
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(refused).toBe(1);
    expect(conn.queuedBytes).toBeLessThanOrEqual(maxQueueBytes);
    // ws's own buffer passes the high-water mark by at most one frame.
    expect(peak).toBeLessThanOrEqual(maxQueueBytes + highWaterBytes + 2 * body.length);
    const dropped = a.transport.stats.droppedFrames;
    conn.send({ t: "req", id: 0, method: "m", body }, { droppable: true });
    expect(a.transport.stats.droppedFrames).toBe(dropped + 1);
    expect(conn.isOpen).toBe(true);
  });

  it("disconnects a peer whose queue stays full past the stall timeout (4006)", async () => {
    const a = await node("a", { highWaterBytes: 64 * 1024, maxQueueBytes: 128 * 1024, heartbeatMs: 0, stallTimeoutMs: 100 });
    const peer = await rawPeer(a.address);
    await peer.handshake();
    stopReading(peer);
    await eventually(() => a.transport.connections().length === 1);
    const conn = a.transport.connections()[0];
    if (!conn) throw new Error("no connection");
    const body = "x".repeat(32 * 1024);
    const started = Date.now();
    while (conn.isOpen && Date.now() - started < 5_000) {
      try {
        conn.send({ t: "req", id: 1, method: "m", body });
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(conn.isOpen).toBe(false);
    expect(a.transport.connections()).toHaveLength(0);
  });
});
