import { type Server, createServer } from "node:http";
import { hostname } from "node:os";
import { Mesh } from "@shoal/mesh";
import { type Logger, type NodeConfig, type NodeIdentity, ShoalError } from "@shoal/protocol";
import { Transport } from "@shoal/transport";
import { readSecretFile } from "./config.js";
import { openDataDir } from "./dataDir.js";
import { createHttpApi } from "./httpApi.js";
import { createMetrics } from "./metrics.js";

export interface RunningNode {
  identity: NodeIdentity;
  mesh: Mesh;
  transport: Transport;
  server: Server;
  /** Leaves the mesh, closes the port, releases the data dir. */
  stop(): Promise<void>;
}

export interface StartNodeOptions {
  config: NodeConfig;
  logger: Logger;
  /** Turns on `POST /debug/block?ms=N` (blocks the event loop), for failure-detection tests. */
  debugRoutes?: boolean;
}

/** Starts one Shoal node: data dir, HTTP + WebSocket port, transport, mesh. */
export async function startNode({ config, logger, debugRoutes = false }: StartNodeOptions): Promise<RunningNode> {
  if (config.plugin.length > 0) {
    throw new ShoalError("SHOAL_ERR_NOT_SUPPORTED", "--plugin: this build has no tool runtime yet, so plugins cannot be loaded");
  }
  const secret = config["secret-file"] ? readSecretFile(config["secret-file"]) : undefined;
  const dataDir = openDataDir(config["data-dir"]);
  const log = logger.child({ node: config.name });
  const server = createServer();
  try {
    await listen(server, config.host, config.port);
  } catch (err) {
    dataDir.release();
    throw err;
  }
  const port = (server.address() as { port: number }).port;
  // Peers need an address they can dial; a wildcard bind is reached through the host name.
  const advertisedHost = config.host === "0.0.0.0" || config.host === "::" ? hostname() : config.host;
  const identity: NodeIdentity = {
    id: dataDir.nodeId,
    name: config.name,
    address: `${advertisedHost}:${port}`,
    capabilities: config.capabilities,
    tools: [],
    slots: config.slots,
  };
  const transport = new Transport({
    identity,
    cluster: config.cluster,
    secret,
    logger: log,
    maxFrameBytes: config["max-frame-bytes"],
    heartbeatMs: config["heartbeat-ms"],
    deadAfterMs: config["down-after-ms"],
  });
  const mesh = new Mesh({
    transport,
    seeds: config.join,
    heartbeatMs: config["heartbeat-ms"],
    suspectAfterMs: config["suspect-after-ms"],
    downAfterMs: config["down-after-ms"],
    logger: log,
  });
  const api = createHttpApi({
    nodeName: config.name,
    mesh,
    metrics: createMetrics(transport.stats, mesh),
    secret,
    logger: log,
    ...(debugRoutes && { debugRoutes: { "/debug/block": blockEventLoop } }),
  });
  server.on("request", (req, res) => void api(req, res));
  server.on("upgrade", (req, socket, head) => {
    if (!transport.handleUpgrade(req, socket, head)) {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
    }
  });
  mesh.start();
  log.info({ id: identity.id, address: identity.address, seeds: config.join, dataDir: dataDir.path, secured: secret !== undefined }, "node started");

  let stopping: Promise<void> | undefined;
  return {
    identity,
    mesh,
    transport,
    server,
    stop() {
      stopping ??= (async () => {
        await mesh.leave();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        dataDir.release();
        log.info("node stopped");
      })();
      return stopping;
    },
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off("listening", onListening);
      if (err.code === "EADDRINUSE") reject(new ShoalError("SHOAL_ERR_PORT_IN_USE", `port ${port} on ${host} is already in use`, { cause: err }));
      else reject(new ShoalError("SHOAL_ERR_BAD_FLAG", `cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
    };
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(port, host);
  });
}

/** Holds the event loop, as a long synchronous computation would. */
function blockEventLoop(_req: unknown, url: URL): { blockedMs: number } {
  const ms = Math.min(Number(url.searchParams.get("ms") ?? 500) || 0, 60_000);
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy on purpose
  }
  return { blockedMs: ms };
}
