import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { type Frame, PROTOCOL_VERSION, createCodec } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { type NodeProcess, startMesh, stopAll, until } from "../support/shoalProcess.js";

const started: NodeProcess[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
});

const codec = createCodec();
const FAST = ["--heartbeat-ms", "100", "--suspect-after-ms", "300", "--down-after-ms", "600"];

/** An upgrade on /mesh from a bare TCP socket: the HTTP status line the node answered with. */
function upgrade(node: NodeProcess): Promise<{ status: number; body: string; socket: ReturnType<typeof connect> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port: node.port });
    socket.on("error", reject);
    socket.once("connect", () =>
      socket.write(
        `GET /mesh HTTP/1.1\r\nHost: ${node.address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    let text = "";
    socket.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      const status = Number(text.slice(9, 12));
      if (status === 101) return resolve({ status, body: "", socket });
      const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? 0);
      if (text.length - end - 4 >= length) resolve({ status, body: text.slice(end + 4, end + 4 + length), socket });
    });
  });
}

async function healthzMs(node: NodeProcess): Promise<number> {
  const t0 = performance.now();
  const { status } = await node.get("/healthz");
  expect(status).toBe(200);
  return performance.now() - t0;
}

describe("hostile peers against real node processes", () => {
  it("an idle-socket flood: 2,000 upgrades that never speak are refused past the cap, cheaply, and the node serves on", async () => {
    const mesh = await startMesh(["hp-a", "hp-b"], { extra: FAST });
    started.push(...mesh.nodes);
    const [a, b] = mesh.nodes as [NodeProcess, NodeProcess];
    // Linked before the flood: the flood comes from the same address as hp-b's dial, and past the
    // per-address cap that dial would be refused too (what the cap is for).
    await until(async () => (await a.statusOf("hp-b")) === "up" && (await b.statusOf("hp-a")) === "up", 10_000, () => "hp-a and hp-b never saw each other up");
    const statuses = new Map<number, number>();
    const held: ReturnType<typeof connect>[] = [];
    let refusal = "";
    for (let batch = 0; batch < 10; batch++) {
      const answers = await Promise.all(Array.from({ length: 200 }, () => upgrade(a)));
      for (const { status, body, socket } of answers) {
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status === 101) held.push(socket);
        else {
          refusal = body;
          socket.destroy();
        }
      }
    }
    // 16 per address by default: the rest were refused before any WebSocket was made.
    expect(statuses.get(101)).toBe(16);
    expect(statuses.get(503)).toBe(2_000 - 16);
    expect(JSON.parse(refusal)).toMatchObject({ error: { code: "SHOAL_ERR_OVERLOADED" } });
    expect(await healthzMs(a)).toBeLessThan(1_000);
    expect(await a.statusOf("hp-b")).toBe("up");
    expect(await b.statusOf("hp-a")).toBe("up");
    const refusedLines = a.logsMatching((l) => typeof l.msg === "string" && l.msg.startsWith("refused a connection"));
    expect(refusedLines.length).toBeLessThanOrEqual(10);
    const metrics = (await a.get("/metrics")).text;
    expect(Number(/^shoal_refused_connections_total (\d+)/m.exec(metrics)?.[1])).toBe(2_000 - 16);
    for (const s of held) s.destroy();
  });

  it("a malformed frame and, after the handshake has failed, one announcing 40 MiB: the node stays up", async () => {
    const mesh = await startMesh(["hp-c"], { extra: FAST });
    started.push(...mesh.nodes);
    const [c] = mesh.nodes as [NodeProcess];
    const { socket } = await upgrade(c);
    const frame = (payload: Buffer, announce: number) => {
      const head = Buffer.alloc(10);
      head.set([0x82, 0x80 | 127]);
      head.writeBigUInt64BE(BigInt(announce), 2);
      return Buffer.concat([head, Buffer.alloc(4), payload]); // a zero mask leaves the payload as it is
    };
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.write(frame(Buffer.from([0xc1]), 1));
    await until(() => c.logsMatching((l) => typeof l.msg === "string" && l.msg.startsWith("handshake failed")).length > 0, 5_000);
    socket.write(frame(Buffer.alloc(16), 40 * 1024 * 1024));
    await closed;
    expect(await healthzMs(c)).toBeLessThan(1_000);
    expect(c.pid).toBeDefined();
  });

  it("a peer connecting under the id of a connected node is refused (4010); the real one stays up on both sides", async () => {
    const mesh = await startMesh(["hp-d", "hp-e"], { extra: FAST });
    started.push(...mesh.nodes);
    const [d, e] = mesh.nodes as [NodeProcess, NodeProcess];
    await until(async () => (await d.statusOf("hp-e")) === "up", 5_000);
    const real = (await d.nodes()).find((n) => n.name === "hp-e");
    const ws = new WebSocket(`ws://${d.address}/mesh`);
    ws.on("error", () => {});
    const frames: Frame[] = [];
    ws.on("message", (m) => frames.push(codec.decode(m as Buffer)));
    const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
    await new Promise((resolve) => ws.once("open", resolve));
    const node = { id: real?.id as string, name: "hp-e", address: "127.0.0.1:1", capabilities: ["gpu"], tools: [], slots: 100_000 };
    ws.send(codec.encode({ t: "hello", v: PROTOCOL_VERSION, cluster: "shoal", node, nonce: "cd".repeat(32) }));
    await until(() => frames.some((f) => f.t === "hello"), 5_000);
    ws.send(codec.encode({ t: "auth" }));
    expect(await closed).toBe(4010);
    expect(frames.some((f) => f.t === "ready")).toBe(false);
    const row = (await d.nodes()).find((n) => n.name === "hp-e");
    expect(row).toMatchObject({ status: "up", address: e.address, slots: real?.slots });
    expect(await e.statusOf("hp-d")).toBe("up");
    expect(d.logsMatching((l) => l.code === "SHOAL_ERR_PEER_ID_IN_USE").length).toBeGreaterThan(0);
  });
});
