import { randomBytes, randomUUID } from "node:crypto";
import { type Server, createServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, connect } from "node:net";
import { type Frame, type Logger, type NodeIdentity, PROTOCOL_VERSION, type PeerMethodTable, type PeerMethods, createCodec, monotonicNow, silentLogger } from "@shoal/protocol";
import { WebSocket } from "ws";
import { z } from "zod";
import { createNonce } from "../secretProof.js";
import { Transport, type TransportOptions } from "../Transport.js";

const anyRequest = { kind: "request", request: z.unknown(), response: z.unknown(), sender: "member" } as const;
const anyCast = { kind: "cast", request: z.unknown(), sender: "member" } as const;

/**
 * Methods for the transport's own tests: any body, any answer, anyone may send them, except
 * `owned` (only a peer named in the body's `owner` may) and `numbered` (answers must be numbers).
 */
export const TEST_METHODS = {
  echo: anyRequest,
  who: anyRequest,
  hold: anyRequest,
  hi: anyRequest,
  ping: anyRequest,
  typed: anyRequest,
  untyped: anyRequest,
  slow: anyRequest,
  never: anyRequest,
  missing: anyRequest,
  strict: { kind: "request", request: z.object({ id: z.string(), name: z.string() }), response: z.string(), sender: "member" },
  numbered: { kind: "request", request: z.unknown(), response: z.number(), sender: "member" },
  owned: { kind: "request", request: z.object({ owner: z.string() }), response: z.string(), sender: "owner" },
  note: anyCast,
  n: { kind: "cast", request: z.number(), sender: "member" },
  big: anyCast,
  "nobody-listens": anyCast,
  "owned-note": { kind: "cast", request: z.object({ owner: z.string() }), sender: "owner" },
} as const satisfies PeerMethodTable;

export interface TestNode<M extends PeerMethodTable = PeerMethods> {
  transport: Transport<M>;
  server: Server;
  /** Where peers dial it: its own port, or the `advertise` address it was given (a test's proxy). */
  address: string;
  /** The port it listens on itself. */
  port: number;
  identity: NodeIdentity;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A transport on a loopback port of its own, as a node would run it. */
export async function startTransport<M extends PeerMethodTable = PeerMethods>(
  name: string,
  options: Partial<Omit<TransportOptions<M>, "identity">> & {
    port?: number;
    id?: string;
    identity?: Partial<Pick<NodeIdentity, "capabilities" | "tools" | "slots">>;
    /** The address to give peers instead of its own (host:port of a proxy in front of it), as `shoal node --advertise` does. */
    advertise?: string;
  } = {},
): Promise<TestNode<M>> {
  const notFound = (_req: unknown, res: { writeHead(s: number): { end(): void } }) => res.writeHead(404).end();
  // With TLS, as `shoal node` serves it: client certificates asked for, checked by the transport.
  const server: Server = options.tls
    ? createHttpsServer({ ca: options.tls.ca, cert: options.tls.cert, key: options.tls.key, requestCert: true, rejectUnauthorized: false }, notFound)
    : createServer(notFound);
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const address = options.advertise ?? `127.0.0.1:${port}`;
  const identity: NodeIdentity = { id: options.id ?? randomUUID(), name, address, capabilities: [], tools: [], slots: 1, ...options.identity };
  const transport = new Transport<M>({ cluster: "test", logger: silentLogger, ...options, identity });
  server.on("upgrade", (req, socket, head) => {
    if (!transport.handleUpgrade(req, socket, head)) socket.destroy();
  });
  const close = async () => {
    await transport.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { transport, server, address, port, identity, close, [Symbol.asyncDispose]: close };
}

/**
 * Transports a test file starts; `closeAll` (in `afterEach`) stops them.
 */
export function transportPool<M extends PeerMethodTable = PeerMethods>(methods?: M) {
  const started: TestNode<M>[] = [];
  return {
    async node(name: string, options: Parameters<typeof startTransport<M>>[1] = {}): Promise<TestNode<M>> {
      const n = await startTransport<M>(name, { ...(methods && { methods }), ...options });
      started.push(n);
      return n;
    },
    /** Forgets a node the test closed itself. */
    forget(n: TestNode<M>): void {
      started.splice(started.indexOf(n), 1);
    },
    async closeAll(): Promise<void> {
      await Promise.all(started.splice(0).map((n) => n.close()));
    },
  };
}

/**
 * A peer written by hand with no Shoal code but the codec: it does the handshake (no secret)
 * and then sends whatever bytes a test wants, the way a buggy or hostile peer would.
 */
export async function rawPeer(address: string, options: { cluster?: string; id?: string; name?: string } = {}) {
  const codec = createCodec();
  const ws = new WebSocket(`ws://${address}/mesh`, { maxPayload: 64 * 1024 * 1024 });
  const received: Frame[] = [];
  let isClosed = false;
  const waiters: (() => void)[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => {
      isClosed = true;
      for (const w of waiters.splice(0)) w();
      resolve({ code, reason: reason.toString() });
    }),
  );
  ws.on("message", (data) => {
    received.push(codec.decode(data as Buffer));
    for (const w of waiters.splice(0)) w();
  });
  ws.on("error", () => {});
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const identity: NodeIdentity = { id: options.id ?? randomUUID(), name: options.name ?? "raw", address: "127.0.0.1:1", capabilities: [], tools: [], slots: 0 };
  const send = (frame: Frame) => ws.send(codec.encode(frame));
  const next = async (type: Frame["t"]): Promise<Frame> => {
    for (;;) {
      const i = received.findIndex((f) => f.t === type);
      if (i >= 0) return received.splice(i, 1)[0] as Frame;
      if (isClosed) throw new Error(`connection closed while waiting for a ${type} frame`);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return {
    ws,
    identity,
    received,
    closed,
    send,
    next,
    sendBytes: (bytes: Uint8Array | string) => ws.send(bytes),
    async handshake() {
      send({ t: "hello", v: PROTOCOL_VERSION, cluster: options.cluster ?? "test", node: identity, nonce: createNonce() });
      await next("hello");
      send({ t: "auth" });
      await next("ready");
    },
  };
}

/** A logger that keeps every line as `{ level, ...fields, msg }`, for tests that read the log. */
export function recordingLogger(lines: Record<string, unknown>[]): Logger {
  const write = (level: string) => (obj: object | string, msg?: string) => {
    lines.push(typeof obj === "string" ? { level, msg: obj } : { level, ...obj, msg });
  };
  const logger: Logger = {
    child: () => logger,
    fatal: write("fatal"),
    error: write("error"),
    warn: write("warn"),
    info: write("info"),
    debug: write("debug"),
    trace: write("trace"),
  };
  return logger;
}

/** Resolves when `predicate` holds, checking on every event of the transport and every 20 ms. */
export async function eventually(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = monotonicNow() + timeoutMs;
  while (!predicate()) {
    if (monotonicNow() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A WebSocket client written on a bare TCP socket: it upgrades, then writes whatever frames a
 * test wants, whatever the server said before (a `ws` client stops sending once it got a close).
 */
export async function rawSocketPeer(address: string) {
  const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
  const socket = connect({ host, port });
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  socket.write(
    `GET /mesh HTTP/1.1\r\nHost: ${address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const answer = await new Promise<string>((resolve) => socket.once("data", (d: Buffer) => resolve(d.toString("latin1"))));
  /** One masked binary frame; `announce` lies about the payload length in the header. */
  const frame = (payload: Uint8Array, announce = payload.length) => {
    const head = announce < 126 ? Buffer.from([0x82, 0x80 | announce]) : announce < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
    if (announce >= 126 && announce < 65536) {
      head.set([0x82, 0x80 | 126]);
      head.writeUInt16BE(announce, 2);
    } else if (announce >= 65536) {
      head.set([0x82, 0x80 | 127]);
      head.writeBigUInt64BE(BigInt(announce), 2);
    }
    const mask = randomBytes(4);
    const body = Buffer.from(payload).map((b, i) => b ^ (mask[i % 4] as number));
    return Buffer.concat([head, mask, body]);
  };
  return {
    socket,
    answer,
    closed,
    write: (payload: Uint8Array, announce?: number) => socket.write(frame(payload, announce)),
  };
}
