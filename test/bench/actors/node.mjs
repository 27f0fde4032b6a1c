// What every worker of the actor benchmark runs: one Shoal runtime node assembled in process, the
// way apps/node/src/startNode.ts assembles it (HTTP server + Transport + Mesh + Runtime +
// LogicRegistry), minus the HTTP API, the data dir and the plugin loader. Timing then happens
// inside the process that calls the runtime, not behind an HTTP client.
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import testActors from "../../fixtures/plugins/actors.mjs";

/** Shoal's node defaults (packages/protocol/src/nodeConfig.ts): what a `shoal node` runs with. */
export const DEFAULT_DETECTOR = { heartbeatMs: 500, suspectAfterMs: 1_200, downAfterMs: 2_000 };
/** The fast settings a fleet on one LAN might choose (`--heartbeat-ms 100 --suspect-after-ms 300 --down-after-ms 600`). */
export const FAST_DETECTOR = { heartbeatMs: 100, suspectAfterMs: 300, downAfterMs: 600 };

/**
 * The smallest useful machine: counts INC events, DONE ends it with the count. The one the
 * runtime tests use (test/fixtures/plugins/actors.mjs), so the bench measures that very machine.
 */
export const counterMachine = testActors.find((def) => def.name === "counter").machine;

/** The actor logic every bench node hosts (as a plugin would register it). */
export const benchLogic = [
  { name: "counter", kind: "machine", machine: counterMachine },
  // A tool that does nothing: spawn-and-complete then measures the runtime alone.
  { name: "noop", kind: "promise", run: (input) => input },
];

/** The built Shoal packages; a clear message when they have not been built. */
export async function loadShoal() {
  try {
    const [protocol, transport, mesh, runtime] = await Promise.all([
      import("@shoal/protocol"),
      import("@shoal/transport"),
      import("@shoal/mesh"),
      import("@shoal/runtime"),
    ]);
    return {
      silentLogger: protocol.silentLogger,
      PEER_METHODS: protocol.PEER_METHODS,
      AskRequestSchema: protocol.AskRequestSchema,
      Transport: transport.Transport,
      Mesh: mesh.Mesh,
      Runtime: runtime.Runtime,
      LogicRegistry: runtime.LogicRegistry,
    };
  } catch (err) {
    throw new Error(`cannot load the built Shoal packages (${err.message}); run \`pnpm turbo run build\` first`);
  }
}

/**
 * A logger that keeps warnings and errors in memory (for reading why a member went down) and
 * drops the rest, like `--log-level warn` without the output.
 */
export function memoryLogger(sink = [], bindings = {}) {
  const keep = (level) => (obj, msg) => {
    if (typeof obj === "string") sink.push({ level, at: performance.now(), msg: obj, ...bindings });
    else sink.push({ level, at: performance.now(), msg, ...bindings, ...obj });
  };
  const noop = () => {};
  return {
    entries: sink,
    child: (more) => memoryLogger(sink, { ...bindings, ...more }),
    fatal: keep("fatal"),
    error: keep("error"),
    warn: keep("warn"),
    info: noop,
    debug: noop,
    trace: noop,
  };
}

/**
 * Starts one runtime node on a loopback port chosen by the kernel.
 * options: { name, slots, seeds, heartbeatMs, suspectAfterMs, downAfterMs, logger? }
 */
export async function startRuntimeNode(options) {
  const shoal = await loadShoal();
  const logger = options.logger ?? shoal.silentLogger;
  const registry = new shoal.LogicRegistry();
  for (const def of benchLogic) registry.register(def);
  const server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = `127.0.0.1:${server.address().port}`;
  const identity = { id: randomUUID(), name: options.name, address, capabilities: [], tools: registry.hostable([]), slots: options.slots };
  // As startNode.ts: the transport closes a silent connection after down-after-ms.
  // The node's methods, and the baseline's: an echo checked both ways with host.ask's request schema.
  const echo = { kind: "request", request: shoal.AskRequestSchema, response: shoal.AskRequestSchema, sender: "member" };
  const transport = new shoal.Transport({
    identity,
    cluster: "bench",
    methods: { ...shoal.PEER_METHODS, "bench.echo": echo },
    logger,
    heartbeatMs: options.heartbeatMs,
    deadAfterMs: options.downAfterMs,
  });
  const mesh = new shoal.Mesh({
    transport,
    seeds: options.seeds ?? [],
    heartbeatMs: options.heartbeatMs,
    suspectAfterMs: options.suspectAfterMs,
    downAfterMs: options.downAfterMs,
    logger,
  });
  const runtime = new shoal.Runtime({ transport, mesh, registry, slots: options.slots, logger });
  server.on("upgrade", (req, socket, head) => {
    if (!transport.handleUpgrade(req, socket, head)) socket.destroy();
  });
  // The baseline of the ask benchmark: a bare request/response on the same connection.
  transport.handle("bench.echo", (body) => body);
  mesh.start();
  return {
    identity,
    address,
    port: server.address().port,
    transport,
    mesh,
    runtime,
    async close() {
      await mesh.leave(); // also closes the transport
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
