import { z } from "zod";
import { ErrorBodySchema } from "./errorBody.js";
import { NameSchema } from "./member.js";

/**
 * An actor id is `<spawner node name>~<suffix>`: unique in the mesh, stable across migrations,
 * and it names the node that supervises the actor, so any node can route to it.
 */
export const ActorIdSchema = z.string().regex(/^[a-zA-Z0-9_.-]{1,64}~[a-zA-Z0-9]{1,32}$/, "expected <node>~<id>");

export const EventSchema = z.looseObject({ type: z.string().min(1).max(256) });
export type ActorEvent = z.infer<typeof EventSchema>;

export const PlacementSchema = z
  .object({
    capabilities: z.array(NameSchema).optional(),
    /** Pin to the node with this name. */
    node: NameSchema.optional(),
    prefer: z.enum(["least_loaded", "spread", "local"]).optional(),
  })
  .strict();
export type Placement = z.infer<typeof PlacementSchema>;

/** A delayed event the actor had scheduled, kept so a restored actor still gets it. */
export const TimerSchema = z.object({
  id: z.string(),
  /** "" for the actor itself, else the id of the child the event is for or from. */
  source: z.string(),
  target: z.string(),
  event: EventSchema,
  /**
   * Milliseconds it had left when the checkpoint was taken: a duration, not a time, since the
   * checkpoint is restored on another node, whose clocks are not this one's. Whoever keeps a
   * checkpoint a while takes the time it kept it off (`agedCheckpoint`).
   */
  dueInMs: z.number().min(0),
});
export type Timer = z.infer<typeof TimerSchema>;

/** What a machine actor can be restored from: XState's persisted snapshot plus its timers. */
export const CheckpointSchema = z.object({
  persisted: z.unknown(),
  timers: z.array(TimerSchema),
  /** Increases with every checkpoint of one placement; older ones are ignored. */
  seq: z.number().int().min(0),
});
export type Checkpoint = z.infer<typeof CheckpointSchema>;

/** The parts of a snapshot that a supervisor mirrors and the API shows. */
export const SnapshotViewSchema = z.object({
  status: z.enum(["active", "done", "error", "stopped"]),
  value: z.unknown().optional(),
  context: z.unknown().optional(),
  output: z.unknown().optional(),
});
export type SnapshotView = z.infer<typeof SnapshotViewSchema>;

/** `host.spawn`: supervisor -> host. */
export const SpawnRequestSchema = z.object({
  actorId: ActorIdSchema,
  logic: NameSchema,
  input: z.unknown(),
  /** Node id of the supervisor, where updates and the outcome go. */
  supervisor: z.string(),
  parent: z.string().optional(),
  /** Which workflow step this actor runs, handed to tools as `ctx.workflowId` / `ctx.stepId`. */
  labels: z.object({ workflowId: z.string().max(128).optional(), stepId: z.string().max(128).optional() }).optional(),
  epoch: z.number().int().min(1),
  /** Idempotency key handed to tools: the same on every retry and migration. */
  key: z.string(),
  attempt: z.number().int().min(1),
  migration: z.boolean(),
  checkpoint: CheckpointSchema.optional(),
});
export type SpawnRequest = z.infer<typeof SpawnRequestSchema>;

export const SpawnReplySchema = z.object({ node: z.string(), since: z.number() });

/** `host.send` / `host.ask`: supervisor -> host; `actor.send` / `actor.ask`: anyone -> supervisor, which routes. */
export const SendRequestSchema = z.object({ actorId: ActorIdSchema, event: EventSchema });
export const AskRequestSchema = z.object({ actorId: ActorIdSchema, event: EventSchema, timeoutMs: z.number().int().min(1).max(600_000) });
export const StopRequestSchema = z.object({ actorId: ActorIdSchema, epoch: z.number().int().min(1).optional(), reason: z.string().max(500).optional() });
export const ActorQuerySchema = z.object({ actorId: ActorIdSchema });

/**
 * `host.holds`: a supervisor whose link to a host came up again asks which of the actors it had
 * placed there (before the link) the host still runs, at those epochs. A host that restarted
 * within the failure detector's window was never seen down, and its actors are gone with it.
 */
export const HoldsRequestSchema = z.object({
  actors: z.array(z.object({ actorId: ActorIdSchema, epoch: z.number().int().min(1) })).max(10_000),
});
/** The ids of the request that do not run on the host at that epoch for the asking supervisor. */
export const HoldsReplySchema = z.object({ missing: z.array(ActorIdSchema).max(10_000) });

/**
 * `sup.update` (cast): host -> supervisor, coalesced; the latest snapshot and checkpoint. With a
 * checkpoint (machine actors) `snapshot` carries only the status: value and context are read from
 * the checkpoint, so they cross the wire once.
 */
export const ActorUpdateSchema = z.object({
  actorId: ActorIdSchema,
  epoch: z.number().int().min(1),
  snapshot: SnapshotViewSchema,
  checkpoint: CheckpointSchema.optional(),
});
export type ActorUpdate = z.infer<typeof ActorUpdateSchema>;

/**
 * What a host answers to `host.send` / `host.ask`. For a machine actor still running: the
 * checkpoint right after the event, in the same frame, so the supervisor holds the checkpoint that
 * includes the event before anyone hears the event was taken; an ask's snapshot is read from it.
 * Otherwise, for an ask: the snapshot right after the event. The supervisor knows which actor and
 * placement it asked, so neither is repeated here: this frame is on every round trip.
 */
export const HostReplySchema = z.object({ view: SnapshotViewSchema.optional(), checkpoint: CheckpointSchema.optional() });
export type HostReply = z.infer<typeof HostReplySchema>;

/** `sup.outcome` (request, retried until answered): host -> supervisor, once per placement. */
export const ActorOutcomeSchema = z.object({
  actorId: ActorIdSchema,
  epoch: z.number().int().min(1),
  status: z.enum(["done", "error", "stopped"]),
  output: z.unknown().optional(),
  error: ErrorBodySchema.optional(),
});
export type ActorOutcome = z.infer<typeof ActorOutcomeSchema>;

/** `sup.handoff` (request): a draining host gives a machine actor back with a fresh checkpoint. */
export const HandoffRequestSchema = z.object({ actorId: ActorIdSchema, epoch: z.number().int().min(1), checkpoint: CheckpointSchema });

/** One row of `GET /v1/actors`. */
export const ActorRowSchema = z.object({
  id: ActorIdSchema,
  address: z.string(),
  logic: z.string(),
  kind: z.enum(["machine", "promise"]),
  state: z.unknown(),
  status: z.string(),
  parent: z.string().nullable(),
  supervisor: z.string(),
  epoch: z.number(),
  attempt: z.number(),
  since: z.string(),
});
export type ActorRow = z.infer<typeof ActorRowSchema>;

/** Where a supervisor placed an actor and why: the node, the strategy, who was eligible and who was not. */
export const PlacementDecisionSchema = z.object({
  nodeId: z.string(),
  nodeName: z.string(),
  strategy: z.string(),
  eligible: z.array(z.string()),
  rejected: z.array(z.object({ node: z.string(), why: z.string() })),
  why: z.string(),
});
export type PlacementDecision = z.infer<typeof PlacementDecisionSchema>;

/** What the API and devtools show of one supervised actor (`GET /v1/actors/:id`, `actor.get`). */
export const ActorDescriptionSchema = z.object({
  id: ActorIdSchema,
  logic: z.string(),
  status: z.string(),
  node: z.string().nullable(),
  address: z.string(),
  epoch: z.number().int().min(0),
  attempt: z.number().int().min(0),
  migrations: z.number().int().min(0),
  snapshot: SnapshotViewSchema,
  placement: PlacementDecisionSchema.nullable(),
  waiting: z.string().nullable(),
  history: z.array(z.object({ node: z.string(), epoch: z.number().int(), at: z.string(), why: z.string() })),
  output: z.unknown().optional(),
});
export type ActorDescription = z.infer<typeof ActorDescriptionSchema>;

/** `POST /v1/actors` */
export const SpawnApiRequestSchema = z
  .object({ logic: NameSchema, input: z.unknown().optional(), placement: PlacementSchema.optional() })
  .strict();
export const EventApiRequestSchema = z.object({ event: EventSchema }).strict();
export const AskApiRequestSchema = z.object({ event: EventSchema, timeout_ms: z.number().int().min(1).max(600_000).optional() }).strict();
