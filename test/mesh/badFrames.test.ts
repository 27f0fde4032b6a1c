import { type Frame, PROTOCOL_VERSION, createCodec } from "@shoal/protocol";
import { pack } from "msgpackr";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { NodeProcess, freePort, stopAll, until } from "../support/shoalProcess.js";

const started: NodeProcess[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
});

const codec = createCodec();
const hello = (): Frame => ({
  t: "hello",
  v: PROTOCOL_VERSION,
  cluster: "shoal",
  node: { id: "raw-peer", name: "raw", address: "127.0.0.1:1", capabilities: [], tools: [], slots: 0 },
  nonce: "ab".repeat(32),
});

/** A hand-made peer: does the handshake, then sends what the test wants. */
async function connect(node: NodeProcess) {
  const ws = new WebSocket(`ws://${node.address}/mesh`, { maxPayload: 64 * 1024 * 1024 });
  const frames: Frame[] = [];
  ws.on("message", (d) => frames.push(codec.decode(d as Buffer)));
  const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  ws.send(codec.encode(hello()));
  await until(() => frames.some((f) => f.t === "hello"), 5_000);
  ws.send(codec.encode({ t: "auth" }));
  await until(() => frames.some((f) => f.t === "ready"), 5_000);
  const errors = () => frames.filter((f): f is Extract<Frame, { t: "error" }> => f.t === "error");
  return { ws, frames, errors, closed };
}
const metric = async (node: NodeProcess, name: string) =>
  Number(new RegExp(`^${name} (\\d+)`, "m").exec((await node.get("/metrics")).text)?.[1] ?? Number.NaN);

describe("bad frames from a peer, against a real node process", () => {
  it("answers malformed and wrong-schema frames with error frames, counts them, keeps the connection", async () => {
    const node = new NodeProcess({ name: "bf-a", port: await freePort() }).start();
    started.push(node);
    await node.ready();
    const peer = await connect(node);
    peer.ws.send(Uint8Array.of(0x92, 0x01)); // truncated MessagePack
    peer.ws.send(pack({ t: "gossip", members: [{ id: 7 }] })); // wrong schema
    peer.ws.send(pack({ t: "what" })); // unknown frame type
    peer.ws.send("text, not binary");
    await until(() => peer.errors().length === 4, 5_000, () => JSON.stringify(peer.errors()));
    expect(peer.errors().map((f) => f.error.code)).toEqual([
      "SHOAL_ERR_BAD_FRAME",
      "SHOAL_ERR_BAD_SCHEMA",
      "SHOAL_ERR_BAD_SCHEMA",
      "SHOAL_ERR_BAD_FRAME",
    ]);
    expect(peer.errors()[1]?.error.path).toEqual(["members", 0, "id"]);
    // Still connected: a ping is answered.
    peer.ws.send(codec.encode({ t: "ping", ts: 7 }));
    await until(() => peer.frames.some((f) => f.t === "pong" && f.ts === 7), 5_000);
    expect(await metric(node, "shoal_bad_frames_total")).toBe(4);
    expect((await node.get("/healthz")).json.ok).toBe(true);
  });

  it("closes the connection of an oversized frame with 1009 and keeps serving", async () => {
    const node = new NodeProcess({ name: "bf-b", port: await freePort(), extra: ["--max-frame-bytes", "65536"] }).start();
    started.push(node);
    await node.ready();
    const peer = await connect(node);
    peer.ws.send(new Uint8Array(200 * 1024));
    expect(await peer.closed).toBe(1009);
    expect((await node.get("/healthz")).json.ok).toBe(true);
    const again = await connect(node);
    again.ws.send(codec.encode({ t: "ping", ts: 1 }));
    await until(() => again.frames.some((f) => f.t === "pong"), 5_000);
    again.ws.close();
  });

  it("refuses a WebSocket on a path other than /mesh without harm", async () => {
    const node = new NodeProcess({ name: "bf-c", port: await freePort() }).start();
    started.push(node);
    await node.ready();
    const ws = new WebSocket(`ws://${node.address}/elsewhere`);
    const failed = await new Promise<string>((resolve) => {
      ws.on("unexpected-response", (_req, res) => resolve(String(res.statusCode)));
      ws.on("error", (err) => resolve(err.message));
    });
    expect(failed).toMatch(/404/);
    expect((await node.get("/healthz")).json.ok).toBe(true);
  });
});
