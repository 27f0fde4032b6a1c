import type { Server } from "node:http";
import { hostname } from "node:os";
import { join } from "node:path";
import { Mesh } from "@shoal/mesh";
import { type Logger, type NodeConfig, type NodeIdentity, ShoalError, monotonicNow } from "@shoal/protocol";
import { LogicRegistry, Runtime } from "@shoal/runtime";
import { EgressGuard, builtinTools, loadPlugins } from "@shoal/tools";
import { MESH_PATH, Transport, refuseUpgrade } from "@shoal/transport";
import { type StoreSync, WorkflowService, WorkflowStore } from "@shoal/workflow";
import { openDataDir } from "./dataDir.js";
import { loadSecurity } from "./security.js";
import { createHttpApi, nodeRow } from "./http/createHttpApi.js";
import { createHttpServer } from "./http/createHttpServer.js";
import { OriginPolicy } from "./http/OriginPolicy.js";
import { InspectHub } from "./inspect/InspectHub.js";
import { createInspectSocket } from "./inspect/inspectSocket.js";
import type { Handler } from "./http/Router.js";
import { createMetrics } from "./metrics.js";
import { loadKnownPeers, rememberPeers } from "./knownPeers.js";
import { peersSettled } from "./peersSettled.js";

export interface RunningNode {
  identity: NodeIdentity;
  mesh: Mesh;
  transport: Transport;
  runtime: Runtime;
  workflows: WorkflowService;
  server: Server;
  /** Drains (actors handed to other nodes), leaves the mesh, closes the port, releases the data dir. */
  stop(): Promise<void>;
}

export interface StartNodeOptions {
  config: NodeConfig;
  logger: Logger;
  /** Turns on the `/debug/*` routes (an event-loop block) for failure tests and drills. */
  debugRoutes?: boolean;
}

/** Starts one Shoal node: data dir, plugins, HTTP + WebSocket port, transport, mesh, runtime. */
export async function startNode({ config, logger, debugRoutes = false }: StartNodeOptions): Promise<RunningNode> {
  const { secret, tls, tokens, webhookSecret } = loadSecurity(config);
  // One guard for what callers make the node fetch (http_request, llm_complete, webhooks): one connection pool.
  const egress = new EgressGuard({ allow: config["egress-allow"], deny: config["egress-deny"] });
  const registry = new LogicRegistry();
  const builtins = builtinTools({
    llm: { url: config["llm-url"] ?? process.env.SHOAL_LLM_URL, model: config["llm-model"] ?? process.env.SHOAL_LLM_MODEL, apiKey: process.env.SHOAL_LLM_API_KEY },
    vision: { cameraDir: config["camera-dir"] ?? process.env.SHOAL_CAMERA_DIR },
    http: { maxResponseBytes: config["http-max-response-bytes"], egress },
  });
  for (const def of [...builtins, ...(await loadPlugins(config.plugin))]) registry.register(def);
  const dataDir = openDataDir(config["data-dir"]);
  const log = logger.child({ node: config.name });
  // Peers need an address they can dial; a wildcard bind is reached through the host name.
  const advertisedHost = config.host === "0.0.0.0" || config.host === "::" ? hostname() : config.host;
  const origins = new OriginPolicy({
    names: [config.name, config.host, advertisedHost, ...(config.advertise ? [config.advertise.slice(0, config.advertise.lastIndexOf(":"))] : []), ...(tls?.hosts ?? [])],
    allowHost: config["allow-host"],
    allowOrigin: config["allow-origin"],
    scheme: tls ? "https" : "http",
  });
  const http = createHttpServer({ logger: log, maxBodyBytes: config["max-body-bytes"], maxJsonDepth: config["max-json-depth"], origins, ...(tls && { tls }) });
  const server = http.server;
  let store: WorkflowStore;
  try {
    // SHOAL_STORE_SYNC=off|full: what a 202 costs against what it promises (test/bench/workflows).
    store = WorkflowStore.open(join(dataDir.path, "workflows.db"), { logger: log.child({ component: "store" }), sync: process.env.SHOAL_STORE_SYNC as StoreSync | undefined });
  } catch (err) {
    dataDir.release();
    throw err;
  }
  try {
    await listen(server, config.host, config.port);
  } catch (err) {
    store.close();
    dataDir.release();
    throw err;
  }
  const port = (server.address() as { port: number }).port;
  const identity: NodeIdentity = {
    id: dataDir.nodeId,
    name: config.name,
    address: config.advertise ?? `${advertisedHost}:${port}`,
    capabilities: config.capabilities,
    tools: registry.hostable(config.capabilities),
    slots: config.slots,
  };
  const transport = new Transport({
    identity,
    cluster: config.cluster,
    secret,
    tls,
    logger: log,
    maxFrameBytes: config["max-frame-bytes"],
    maxHandshakeFrameBytes: config["max-handshake-frame-bytes"],
    handshakeTimeoutMs: config["handshake-timeout-ms"],
    maxPendingConnections: config["max-pending-connections"],
    maxPendingPerAddress: config["max-pending-per-address"],
    maxPeerRequests: config["max-peer-requests"],
    heartbeatMs: config["heartbeat-ms"],
    deadAfterMs: config["down-after-ms"],
  });
  const knownPeers = loadKnownPeers(dataDir.path, log).filter((p) => p.address !== identity.address);
  const mesh = new Mesh({
    transport,
    seeds: [...new Set([...config.join, ...knownPeers.map((p) => p.address)])],
    heartbeatMs: config["heartbeat-ms"],
    suspectAfterMs: config["suspect-after-ms"],
    downAfterMs: config["down-after-ms"],
    maxMembers: config["max-members"],
    incarnation: dataDir.incarnation,
    onIncarnation: (n) => dataDir.saveIncarnation(n),
    logger: log,
  });
  const runtime = new Runtime({ transport, mesh, registry, slots: config.slots, maxActors: config["max-actors"], logger: log });
  const workflows = new WorkflowService({
    runtime,
    mesh,
    transport,
    logger: log,
    store,
    maxWorkflowInstances: config["max-workflow-instances"],
    maxWorkflows: config["max-workflows"],
    ack: config.ack, replicas: config.replicas,
    webhooks: { egress, secret: webhookSecret },
  });
  const hub = new InspectHub({ mesh, runtime, workflows, transport, logger: log, toRow: nodeRow });
  const inspect = createInspectSocket(hub, log, { maxInspectors: config["max-inspectors"], tokens, origins });
  // Upgrades never reach Fastify. node:http hands them over with no error listener on the socket.
  server.on("upgrade", (req, socket, head) => {
    socket.on("error", (err) => log.debug({ err }, "upgrade socket error"));
    // Peers are never web pages: an upgrade to /mesh with an Origin is a browser, sent by a page.
    if (req.headers.origin !== undefined && (req.url ?? "").split("?", 1)[0] === MESH_PATH) {
      refuseUpgrade(socket, 403, { code: "SHOAL_ERR_BAD_ORIGIN", message: `${MESH_PATH} is for peers, not web pages (the upgrade came from ${req.headers.origin.slice(0, 200)})` });
      return;
    }
    if (!transport.handleUpgrade(req, socket, head) && !inspect.handleUpgrade(req, socket, head)) {
      refuseUpgrade(socket, 404, { code: "SHOAL_ERR_NOT_FOUND", message: `no WebSocket at ${(req.url ?? "/").split("?", 1)[0]?.slice(0, 200)}` });
    }
  });
  await createHttpApi(http, {
    nodeName: config.name,
    mesh,
    runtime,
    workflows,
    metrics: createMetrics(transport.stats, mesh, runtime, workflows, store),
    tokens,
    ...(debugRoutes && { debugRoutes: debugHandlers() }),
  });
  mesh.start();
  const forgetPeers = rememberPeers(mesh, dataDir.path, log);
  let stopping: Promise<void> | undefined;
  // Workflows this node owned before it stopped run on once it is back among the peers it knew.
  const settled = { expect: knownPeers.map((p) => p.address), quietMs: 2 * config["heartbeat-ms"], maxMs: Math.max(5_000, 2 * config["down-after-ms"]) };
  void peersSettled(mesh, settled).then(() => {
    if (stopping) return;
    workflows.resume().catch((err: unknown) => log.error({ err }, "could not resume the workflows in the store"));
  });
  log.info(
    { id: identity.id, address: identity.address, seeds: config.join, dataDir: dataDir.path, tls: tls !== undefined, tokens: tokens !== undefined, secret: secret !== undefined, tools: identity.tools },
    "node started",
  );

  return {
    identity,
    mesh,
    transport,
    runtime,
    workflows,
    server,
    stop() {
      stopping ??= (async () => {
        // First, so that steps stopped by the drain do not end workflows that should run on after a restart.
        workflows.close();
        await runtime.drain(config["drain-grace-ms"]);
        inspect.close();
        hub.close();
        forgetPeers();
        await mesh.leave();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        store.close();
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

/**
 * Failure drills: hold the event loop. Links are cut and slowed from outside, by the fault
 * proxy of test/chaos, not by switches in the node.
 */
function debugHandlers(): Record<string, Handler> {
  return {
    "/debug/block": ({ url }) => {
      const ms = Math.min(Number(url.searchParams.get("ms") ?? 500) || 0, 60_000);
      const until = monotonicNow() + ms;
      while (monotonicNow() < until) {
        // busy on purpose: a long synchronous computation
      }
      return { json: { blockedMs: ms } };
    },
  };
}
