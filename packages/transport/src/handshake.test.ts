import { CloseCodes } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { rawPeer, transportPool } from "./testing/fixtures.js";

const pool = transportPool();
const node = pool.node;
afterEach(pool.closeAll);

describe("handshake with a cluster secret", () => {
  it("connects peers that share the secret", async () => {
    const a = await node("a", { secret: "s3cret" });
    const b = await node("b", { secret: "s3cret" });
    const conn = await b.transport.dial(a.address);
    expect(conn.isOpen).toBe(true);
  });

  it("refuses a wrong secret with close code 4001 on both sides, and the node keeps working", async () => {
    const a = await node("a", { secret: "right" });
    const wrong = await node("wrong", { secret: "wrong" });
    await expect(wrong.transport.dial(a.address)).rejects.toMatchObject({ code: "SHOAL_ERR_AUTH_FAILED" });
    expect(a.transport.connections()).toHaveLength(0);
    const good = await node("good", { secret: "right" });
    await expect(good.transport.dial(a.address)).resolves.toMatchObject({ peer: { name: "a" } });
  });

  it("counts the auth failure where the mismatch is found: the dialer checks the acceptor first", async () => {
    const a = await node("a", { secret: "right" });
    const b = await node("b", { secret: "wrong" });
    await b.transport.dial(a.address).catch(() => {});
    // The dialer checks the acceptor's proof first, so here the dialer is the one that refuses.
    expect(b.transport.stats.authFailures).toBe(1);
  });

  it("refuses a dialer without a secret, with close code 4001", async () => {
    const a = await node("a", { secret: "right" });
    const peer = await rawPeer(a.address);
    await peer.handshake().catch(() => {});
    const { code, reason } = await peer.closed;
    expect(code).toBe(CloseCodes.AUTH_FAILED);
    expect(reason).toMatch(/secret/);
    expect(a.transport.stats.authFailures).toBe(1);
  });

  it("refuses an acceptor that cannot prove the secret", async () => {
    const open = await node("open");
    const b = await node("b", { secret: "right" });
    await expect(b.transport.dial(open.address)).rejects.toMatchObject({ code: "SHOAL_ERR_AUTH_FAILED" });
  });

  it("never sends the secret over the wire", async () => {
    const secret = "a-very-recognisable-secret-value";
    const a = await node("a", { secret });
    const peer = await rawPeer(a.address);
    const bytes: Buffer[] = [];
    peer.ws.on("message", (d) => bytes.push(d as Buffer));
    await peer.handshake().catch(() => {});
    await peer.closed;
    expect(Buffer.concat(bytes).includes(Buffer.from(secret))).toBe(false);
  });
});

describe("handshake failures", () => {
  it("closes with 4004 when the peer says nothing", async () => {
    const a = await node("a", { handshakeTimeoutMs: 200 });
    const ws = new WebSocket(`ws://${a.address}/mesh`);
    const code = await new Promise<number>((resolve) => ws.on("close", resolve));
    expect(code).toBe(CloseCodes.HANDSHAKE_TIMEOUT);
  });

  it("closes with 4000 on garbage instead of a hello", async () => {
    const a = await node("a");
    const peer = await rawPeer(a.address);
    peer.sendBytes(Uint8Array.of(0x92, 0x01));
    expect((await peer.closed).code).toBe(CloseCodes.HANDSHAKE_FAILED);
  });

  it("closes with 4002 on another protocol version", async () => {
    const a = await node("a");
    const peer = await rawPeer(a.address);
    peer.send({ t: "hello", v: 999, cluster: "test", node: peer.identity, nonce: "0".repeat(64) });
    expect((await peer.closed).code).toBe(CloseCodes.PROTOCOL_VERSION);
  });
});
