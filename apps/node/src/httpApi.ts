import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Mesh } from "@shoal/mesh";
import { type ErrorBody, type Logger, type NodeRow, type NodesResponse, ShoalError, isShoalError } from "@shoal/protocol";
import type { Registry } from "prom-client";
import { allErrors } from "./errors.js";

export interface HttpApiOptions {
  nodeName: string;
  mesh: Mesh;
  metrics: Registry;
  secret: string | undefined;
  logger: Logger;
  /** Extra routes for tests and fault drills, e.g. `/debug/block`. */
  debugRoutes?: Record<string, (req: IncomingMessage, url: URL) => unknown>;
}

type Handler = (req: IncomingMessage, url: URL) => Promise<Reply> | Reply;
interface Reply {
  status?: number;
  json?: unknown;
  text?: string;
  contentType?: string;
}

/**
 * The node's HTTP API on the mesh port. Every answer is JSON; every failure is a 4xx with
 * `{"error":{"code","message"}}`, and a handler that throws something unexpected still gets a
 * JSON 500 rather than a dropped connection.
 */
export function createHttpApi(options: HttpApiOptions) {
  const log = options.logger.child({ component: "http" });
  const routes = new Map<string, Map<string, Handler>>();
  const route = (method: string, path: string, handler: Handler) => {
    if (!routes.has(path)) routes.set(path, new Map());
    routes.get(path)?.set(method, handler);
  };
  // Liveness probes need no secret; everything else does when the cluster has one.
  const open = new Set(["/healthz"]);

  route("GET", "/healthz", () => ({ json: { ok: true, node: options.nodeName } }));
  route("GET", "/v1/nodes", () => ({ json: nodesResponse(options.nodeName, options.mesh) }));
  route("GET", "/metrics", async () => ({ text: await options.metrics.metrics(), contentType: options.metrics.contentType }));
  for (const [path, fn] of Object.entries(options.debugRoutes ?? {})) route("POST", path, (req, url) => ({ json: fn(req, url) }));

  const authorized = (req: IncomingMessage): boolean => {
    if (options.secret === undefined) return true;
    const header = req.headers.authorization ?? "";
    const expected = Buffer.from(`Bearer ${options.secret}`);
    const given = Buffer.from(header);
    return given.length === expected.length && timingSafeEqual(given, expected);
  };

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      const url = new URL(req.url ?? "/", "http://node.invalid");
      const byMethod = routes.get(url.pathname);
      if (!byMethod) throw new ShoalError("SHOAL_ERR_NOT_FOUND", `no route ${req.method} ${url.pathname}`);
      const handler = byMethod.get(req.method ?? "GET");
      if (!handler) throw new ShoalError("SHOAL_ERR_METHOD_NOT_ALLOWED", `${url.pathname} does not take ${req.method}; it takes ${[...byMethod.keys()].join(", ")}`);
      if (!open.has(url.pathname) && !authorized(req)) {
        throw new ShoalError("SHOAL_ERR_UNAUTHORIZED", "this node needs the cluster secret as 'Authorization: Bearer <secret>'");
      }
      reply = await handler(req, url);
    } catch (err) {
      reply = errorReply(err, log);
    }
    const body = reply.text ?? JSON.stringify(reply.json);
    res.writeHead(reply.status ?? 200, { "content-type": reply.contentType ?? "application/json; charset=utf-8" });
    res.end(body);
  };
}

function errorReply(err: unknown, log: Logger): Reply {
  if (isShoalError(err)) {
    const status = allErrors[err.code]?.status ?? 400;
    return { status, json: { error: err.toBody() satisfies ErrorBody } };
  }
  log.error({ err }, "request handler failed");
  return { status: 500, json: { error: { code: "SHOAL_ERR_INTERNAL", message: (err as Error)?.message ?? String(err) } } };
}

export function nodesResponse(nodeName: string, mesh: Mesh): NodesResponse {
  const nodes: NodeRow[] = mesh.members().map((m) => ({
    name: m.name,
    id: m.id,
    address: m.address,
    status: m.status,
    capabilities: m.capabilities,
    tools: m.tools,
    slots: m.slots,
    running: m.running,
    load: m.slots > 0 ? m.running / m.slots : 0,
    incarnation: m.incarnation,
    self: m.self,
    last_seen_ms: m.lastSeenMs ?? null,
  }));
  return { node: nodeName, nodes };
}
