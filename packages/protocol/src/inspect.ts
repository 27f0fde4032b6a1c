import { z } from "zod";
import { SnapshotViewSchema } from "./actors.js";
import { NodeRowSchema } from "./api.js";
import { WorkflowStateSchema } from "./workflow.js";

const base = { at: z.number(), node: z.string() };

/** An XState inspection event of an actor hosted on `node` (`@xstate.actor`, `@xstate.event`, `@xstate.snapshot`). */
export const ActorInspectEventSchema = z.object({
  kind: z.literal("actor"),
  ...base,
  actorId: z.string(),
  workflowId: z.string().optional(),
  type: z.string(),
  sessionId: z.string(),
  event: z.unknown().optional(),
  snapshot: SnapshotViewSchema.optional(),
});
export type ActorInspectEvent = z.infer<typeof ActorInspectEventSchema>;

/** A supervisor's view of where an actor runs: placed, moving, moved, ended. Devtools follow migrations with it. */
export const PlacementInspectEventSchema = z.object({
  kind: z.literal("placement"),
  ...base,
  actorId: z.string(),
  logic: z.string(),
  status: z.string(),
  host: z.string().nullable(),
  epoch: z.number(),
  why: z.string().nullable(),
  workflowId: z.string().optional(),
});

/** A membership row as `node` sees it, sent when it changes. */
export const MemberInspectEventSchema = z.object({ kind: z.literal("member"), ...base, member: NodeRowSchema });

/** A workflow's state in the seed's format, from its owner, at most every 100 ms per workflow. */
export const WorkflowInspectEventSchema = z.object({ kind: z.literal("workflow"), ...base, workflow_id: z.string(), state: WorkflowStateSchema });

/** Events were left out to keep up: how many. */
export const DroppedInspectEventSchema = z.object({ kind: z.literal("dropped"), ...base, count: z.number() });

/** What `WS /v1/inspect` sends: each message is a JSON array of these. */
export const InspectEventSchema = z.discriminatedUnion("kind", [
  ActorInspectEventSchema,
  PlacementInspectEventSchema,
  MemberInspectEventSchema,
  WorkflowInspectEventSchema,
  DroppedInspectEventSchema,
]);
export type InspectEvent = z.infer<typeof InspectEventSchema>;

export const InspectFilterSchema = z.object({ workflow: z.string().max(64).optional() }).strict();
export type InspectFilter = z.infer<typeof InspectFilterSchema>;

/** `inspect.subscribe` (cast): "send me your events for `leaseMs`". */
export const InspectSubscribeSchema = z.object({ leaseMs: z.number().int().min(100).max(60_000) });
/** `inspect.events` (cast): a batch of a peer's events. */
export const InspectEventsSchema = z.object({ events: z.array(InspectEventSchema).max(10_000) });
