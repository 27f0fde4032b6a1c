// The two sides of the two stacks under test, behind one small interface so that the client's
// measuring loop is the same code for both:
//   startServer(kind) -> { port, close() }
//   connect(kind, port) -> { request(body) -> Promise<body>, close() }
// kind "shoal": @shoal/transport (handshake, framing, zod-checked frames, request/response).
// kind "raw":   a bare `ws` socket carrying msgpackr-encoded { id, body }: the floor that Shoal's
//               transport is compared with.
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { createRequire } from "node:module";

// `ws` and `msgpackr` are dependencies of packages/transport, not of the test package, so resolve
// them from there: the baseline then runs the very versions that Shoal runs on.
const requireFromTransport = createRequire(new URL("../../../packages/transport/package.json", import.meta.url));

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

/** A Transport on an HTTP server of its own, the way a node mounts it. */
async function shoalNode(name) {
  const { Transport, silentLogger } = await loadShoal();
  const server = createServer((_req, res) => res.writeHead(404).end());
  const port = await listen(server);
  const identity = { id: randomUUID(), name, address: `127.0.0.1:${port}`, capabilities: [], tools: [], slots: 1 };
  // Default heartbeat and dead-peer settings, as a node runs them: their pings are part of the cost.
  const transport = new Transport({ identity, cluster: "bench", logger: silentLogger });
  server.on("upgrade", (req, socket, head) => {
    if (!transport.handleUpgrade(req, socket, head)) socket.destroy();
  });
  const close = async () => {
    await transport.close();
    await closeServer(server);
  };
  return { transport, port, close };
}

export async function startServer(kind) {
  if (kind === "shoal") {
    const node = await shoalNode("bench-server");
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

export async function connect(kind, port) {
  const address = `127.0.0.1:${port}`;
  if (kind === "shoal") {
    const node = await shoalNode("bench-client");
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
