import { z } from "zod";
import { ErrorBodySchema } from "./errorBody.js";
import { NodeStatusSchema } from "./member.js";
import { WorkflowIdSchema, WorkflowSummarySchema } from "./workflow.js";

/** `GET /healthz` */
export const HealthzResponseSchema = z.object({ ok: z.literal(true), node: z.string() });
export type HealthzResponse = z.infer<typeof HealthzResponseSchema>;

/** One row of `GET /v1/nodes`. `load` is running / slots (0 when the node has no slots). */
export const NodeRowSchema = z.object({
  name: z.string(),
  id: z.string(),
  address: z.string(),
  status: NodeStatusSchema,
  capabilities: z.array(z.string()),
  tools: z.array(z.string()),
  slots: z.number(),
  running: z.number(),
  load: z.number(),
  incarnation: z.number(),
  self: z.boolean(),
  /** Whole milliseconds since this node last heard from that one; null for itself or never. */
  last_seen_ms: z.number().int().nullable(),
});
export type NodeRow = z.infer<typeof NodeRowSchema>;

/** `GET /v1/nodes`: the mesh as `node` sees it. */
export const NodesResponseSchema = z.object({ node: z.string(), nodes: z.array(NodeRowSchema) });
export type NodesResponse = z.infer<typeof NodesResponseSchema>;

/** `GET /v1/workflows` (`?scope=mesh`: every node's, merged). */
export const WorkflowListResponseSchema = z.object({ node: z.string(), workflows: z.array(WorkflowSummarySchema) });
export type WorkflowListResponse = z.infer<typeof WorkflowListResponseSchema>;

/** `POST /v1/workflows` without `?wait=1`: 202, the id to follow it by. */
export const WorkflowAcceptedSchema = z.object({ workflow_id: WorkflowIdSchema });
export type WorkflowAccepted = z.infer<typeof WorkflowAcceptedSchema>;

/** Body of every 4xx/5xx answer of the HTTP API. */
export const ApiErrorResponseSchema = z.object({ error: ErrorBodySchema });
export type ApiErrorResponse = z.infer<typeof ApiErrorResponseSchema>;
