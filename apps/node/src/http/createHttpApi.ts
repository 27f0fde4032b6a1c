import type { Mesh } from "@shoal/mesh";
import {
  type ActorRow,
  AskApiRequestSchema,
  EventApiRequestSchema,
  type NodeRow,
  type NodesResponse,
  SpawnApiRequestSchema,
  type WorkflowAccepted,
} from "@shoal/protocol";
import type { Runtime } from "@shoal/runtime";
import type { WorkflowService } from "@shoal/workflow";
import { z } from "zod";
import type { Registry } from "prom-client";
import type { TokenVerifier } from "../auth/apiTokens.js";
import type { HttpServer } from "./createHttpServer.js";
import { devtoolsHandler, devtoolsRoot } from "./devtoolsAssets.js";
import { type Handler, Router } from "./Router.js";

export interface HttpApiOptions {
  nodeName: string;
  mesh: Mesh;
  runtime: Runtime;
  workflows: WorkflowService;
  metrics: Registry;
  /** `--token-key-file`: the API wants tokens; open without. */
  tokens: TokenVerifier | undefined;
  /** Extra POST routes for tests and fault drills, e.g. `/debug/block`. */
  debugRoutes?: Record<string, Handler>;
}

/** The node's HTTP API on the mesh port: adds the routes to the port's app, then serves them. */
export async function createHttpApi(http: HttpServer, options: HttpApiOptions): Promise<void> {
  const { runtime, workflows } = options;
  const router = new Router(http.app, options.tokens)
    .add("GET", "/healthz", () => ({ json: { ok: true, node: options.nodeName } }), { access: "open" })
    .add("GET", "/v1/nodes", () => ({ json: nodesResponse(options.nodeName, options.mesh) }))
    .add("GET", "/metrics", async () => ({ text: await options.metrics.metrics(), contentType: options.metrics.contentType }))
    .add("GET", "/v1/actors", () => ({ json: { node: options.nodeName, actors: runtime.list() satisfies ActorRow[] } }))
    .add("POST", "/v1/actors", async ({ body }) => {
      const req = body(SpawnApiRequestSchema);
      // Placement fails at once when nothing in the mesh can run it: answer with that error.
      const ref = await runtime.start(req.logic, req.input ?? {}, req.placement ? { placement: req.placement } : {});
      return { status: 201, json: await runtime.describe(ref.id) };
    })
    .add("GET", "/v1/actors/:id", async ({ params }) => ({ json: await runtime.describe(params.id ?? "") }))
    .add("POST", "/v1/actors/:id/events", async ({ params, body }) => {
      const { event } = body(EventApiRequestSchema);
      await runtime.send(params.id ?? "", event);
      return { status: 202, json: { delivered: true } };
    })
    .add("POST", "/v1/actors/:id/ask", async ({ params, body }) => {
      const { event, timeout_ms } = body(AskApiRequestSchema);
      return { json: await runtime.ask(params.id ?? "", event, timeout_ms ?? 5_000) };
    })
    .add("DELETE", "/v1/actors/:id", async ({ params }) => {
      await runtime.stop(params.id ?? "");
      return { json: { stopped: true } };
    })
    .add("GET", "/v1/workflows", async ({ url }) => ({
      json: { node: options.nodeName, workflows: url.searchParams.get("scope") === "mesh" ? await workflows.listMesh() : workflows.list() },
    }))
    .add("GET", "/v1/logic/:name", ({ params }) => ({ json: runtime.registry.describe(params.name ?? "") }))
    .add("POST", "/v1/workflows", async ({ body, url }) => {
      // The spec is checked by the orchestrator, which names the step in its 400.
      const { workflow_id } = await workflows.submit(body(z.unknown()));
      if (url.searchParams.get("wait") === "1") return { json: await workflows.wait(workflow_id) };
      return { status: 202, json: { workflow_id } satisfies WorkflowAccepted };
    })
    .add("GET", "/v1/workflows/:id", async ({ params }) => ({ json: await workflows.state(params.id ?? "") }))
    .add("GET", "/v1/workflows/:id/result", async ({ params }) => ({ json: await workflows.result(params.id ?? "") }))
    .add("POST", "/v1/workflows/:id/cancel", async ({ params }) => ({ json: await workflows.cancel(params.id ?? "") }));
  // The inspector's page and assets are open (a browser navigating cannot send a token); the page asks for one.
  const devtools = devtoolsHandler(devtoolsRoot());
  for (const path of ["/devtools", "/devtools/", "/devtools/assets/:file"]) router.add("GET", path, devtools, { access: "open" });
  for (const [path, handler] of Object.entries(options.debugRoutes ?? {})) router.add("POST", path, handler, { access: "admin" });
  router.seal();
  await http.start();
}

export function nodesResponse(nodeName: string, mesh: Mesh): NodesResponse {
  return { node: nodeName, nodes: mesh.members().map(nodeRow) };
}

export function nodeRow(m: ReturnType<Mesh["members"]>[number]): NodeRow {
  return {
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
  };
}
