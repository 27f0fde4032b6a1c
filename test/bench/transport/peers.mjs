// The two sides of the stacks under test, behind one small interface so that the client's
// measuring loop is the same code for all:
//   startServer(kind, pkiDir) -> { port, close() }
//   connect(kind, port, pkiDir) -> { request(body) -> Promise<body>, close() }
// kind "shoal":     @shoal/transport (handshake, framing, zod-checked frames, request/response).
// kind "shoal-tls": the same over wss with mutual TLS, as `shoal node --tls-dir` runs it; the
//                   certificates are in pkiDir/<node name>/ (made by run.mjs).
// kind "raw":       a bare `ws` socket carrying msgpackr-encoded { id, body }: the floor that
//                   Shoal's transport is compared with.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createRequire } from "node:module";
import { join } from "node:path";

// `ws` and `msgpackr` are dependencies of packages/transport, not of the test package, so resolve
// them from there: the baseline then runs the very versions that Shoal runs on.
const requireFromTransport = createRequire(new URL("../../../packages/transport/package.json", import.meta.url));
const requireFromProtocol = createRequire(new URL("../../../packages/protocol/package.json", import.meta.url));

async function loadShoal() {
  const urls = ["../../../packages/transport/dist/index.js", "../../../packages/protocol/dist/index.js"];
  try {
    const [transport, protocol] = await Promise.all(urls.map((u) => import(new URL(u, import.meta.url).href)));
    return { Transport: transport.Transport, silentLogger: protocol.silentLogger };
  } catch (err) {
    throw new Error(`cannot load the built Shoal packages (${err.message}); run \`pnpm turbo run build\` first`);
  }
}

function loadRaw() {
  const { WebSocket, WebSocketServer } = requireFromTransport("ws");
  const { Packr } = requireFromTransport("msgpackr");
  // Plain maps, as Shoal's codec uses: records would let one end depend on the other's state.
  return { WebSocket, WebSocketServer, packr: new Packr({ useRecords: false }) };
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server.address().port));
  });
}

function closeServer(server) {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * The one method the benchmark calls: any body, any answer, from any member. Its schemas are
 * `z.unknown()`, so what is measured is the transport, not the parsing of one method's body.
 */
function benchMethods() {
  const { z } = requireFromProtocol("zod");
  return { echo: { kind: "request", request: z.unknown(), response: z.unknown(), sender: "member" } };
}

/** The `--tls-dir` of the node of this name: the cluster CA and its certificate and key. */
function tlsMaterial(pkiDir, name) {
  const read = (file) => readFileSync(join(pkiDir, name, file));
  return { ca: read("ca.crt"), cert: read("node.crt"), key: read("node.key") };
}

/**
 * A Transport on an HTTP(S) server of its own, the way a node mounts it: with `tls`, https that
 * asks for client certificates and leaves checking them to the transport, as `shoal node` does.
 */
async function shoalNode(name, tls) {
  const { Transport, silentLogger } = await loadShoal();
  const notFound = (_req, res) => res.writeHead(404).end();
  const server = tls ? createHttpsServer({ ...tls, requestCert: true, rejectUnauthorized: false }, notFound) : createServer(notFound);
  const port = await listen(server);
  const identity = { id: randomUUID(), name, address: `127.0.0.1:${port}`, capabilities: [], tools: [], slots: 1 };
  // Default heartbeat and dead-peer settings, as a node runs them: their pings are part of the cost.
  const transport = new Transport({ identity, cluster: "bench", logger: silentLogger, methods: benchMethods(), ...(tls && { tls }) });
  server.on("upgrade", (req, socket, head) => {
    if (!transport.handleUpgrade(req, socket, head)) socket.destroy();
  });
  const close = async () => {
    await transport.close();
    await closeServer(server);
  };
  return { transport, port, close };
}

export async function startServer(kind, pkiDir) {
  if (kind === "shoal" || kind === "shoal-tls") {
    const node = await shoalNode("bench-server", kind === "shoal-tls" ? tlsMaterial(pkiDir, "bench-server") : undefined);
    node.transport.handle("echo", (body) => body);
    return { port: node.port, close: node.close };
  }
  if (kind === "raw") {
    const { WebSocketServer, packr } = loadRaw();
    const server = createServer((_req, res) => res.writeHead(404).end());
    const wss = new WebSocketServer({ server, perMessageDeflate: false });
    wss.on("connection", (ws) => {
      ws.on("message", (data) => {
        // Decode and re-encode rather than bounce the bytes: Shoal's server does both too.
        const { id, body } = packr.unpack(data);
        ws.send(packr.pack({ id, body }), { binary: true });
      });
    });
    const port = await listen(server);
    return {
      port,
      close: async () => {
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        await closeServer(server);
      },
    };
  }
  throw new Error(`unknown kind ${kind}`);
}

export async function connect(kind, port, pkiDir) {
  const address = `127.0.0.1:${port}`;
  if (kind === "shoal" || kind === "shoal-tls") {
    const node = await shoalNode("bench-client", kind === "shoal-tls" ? tlsMaterial(pkiDir, "bench-client") : undefined);
    const conn = await node.transport.dial(address);
    return { request: (body) => conn.request("echo", body), close: node.close };
  }
  if (kind === "raw") {
    const { WebSocket, packr } = loadRaw();
    const ws = new WebSocket(`ws://${address}/`, { perMessageDeflate: false });
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    // Correlation by id, the least a request/response protocol needs; no timeouts, no checks.
    const pending = new Map();
    let nextId = 1;
    ws.on("message", (data) => {
      const { id, body } = packr.unpack(data);
      const resolve = pending.get(id);
      pending.delete(id);
      resolve?.(body);
    });
    ws.on("close", () => {
      for (const resolve of pending.values()) resolve(Promise.reject(new Error("raw socket closed")));
      pending.clear();
    });
    return {
      request(body) {
        const id = nextId++;
        return new Promise((resolve) => {
          pending.set(id, resolve);
          ws.send(packr.pack({ id, body }), { binary: true });
        });
      },
      close: async () => {
        if (ws.readyState === ws.CLOSED) return;
        const closed = new Promise((resolve) => ws.once("close", resolve));
        ws.close();
        await closed;
      },
    };
  }
  throw new Error(`unknown kind ${kind}`);
}
