import { z } from "zod";
import { ErrorBodySchema } from "./errorBody.js";
import { CheckpointSchema, PlacementSchema } from "./actors.js";
import { NameSchema } from "./member.js";

/** Step ids: no dots (they separate a `$from` path) and no brackets (they mark instances). */
export const StepIdSchema = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "letters, digits, '_' and '-' only");

export const ForEachSchema = z.union([
  z.object({ items: z.array(z.unknown()).max(10_000) }).strict(),
  z.object({ nodes: z.object({ capabilities: z.array(NameSchema).max(64).optional(), names: z.array(NameSchema).max(10_000).optional() }).strict() }).strict(),
]);

export const StepSpecSchema = z
  .object({
    id: StepIdSchema,
    tool: NameSchema.optional(),
    agent: NameSchema.optional(),
    needs: z.array(StepIdSchema).max(1000).optional(),
    input: z.unknown().optional(),
    for_each: ForEachSchema.optional(),
    timeout_ms: z.number().int().min(1).max(86_400_000).optional(),
    /** Tries after the first one, on a timeout or an error; 1 by default. */
    retries: z.number().int().min(0).max(20).optional(),
    placement: PlacementSchema.optional(),
    /** What the step does when a step it needs failed: go on with what exists, or fail. */
    on_missing: z.enum(["partial", "fail"]).optional(),
  })
  .strict()
  .refine((s) => (s.tool === undefined) !== (s.agent === undefined), { message: "a step runs exactly one of tool or agent", path: ["tool"] });
export type StepSpec = z.infer<typeof StepSpecSchema>;

export const WorkflowEventNameSchema = z.enum([
  "workflow.started",
  "workflow.finished",
  "step.started",
  "step.completed",
  "step.failed",
  "step.retrying",
]);
export type WorkflowEventName = z.infer<typeof WorkflowEventNameSchema>;

/**
 * The body of a webhook POST: what happened, to which workflow, when, with the event's own fields
 * (`step`, `instance`, `node`, `attempt`, `result`, `error`; `status`, `total_time_ms`,
 * `failures` on `workflow.finished`). `event_id` is also the `Idempotency-Key` header and the
 * same on every try; the body is what `Shoal-Signature` signs.
 */
export const WebhookNoticeSchema = z
  .object({
    event: WorkflowEventNameSchema,
    workflow_id: z.string(),
    name: z.string(),
    at: z.iso.datetime(),
  })
  .catchall(z.unknown());
export type WebhookNotice = z.infer<typeof WebhookNoticeSchema>;
export const WebhookPayloadSchema = WebhookNoticeSchema.extend({ event_id: z.string().regex(/^evt_[0-9a-f]{24}$/) });
export type WebhookPayload = z.infer<typeof WebhookPayloadSchema>;

export const NotifySchema = z
  .object({ url: z.url({ protocol: /^https?$/ }).max(2048), on: z.array(WorkflowEventNameSchema).min(1).max(WorkflowEventNameSchema.options.length).optional() })
  .strict();

export const WorkflowSpecSchema = z
  .object({
    name: z.string().min(1).max(200),
    deadline_ms: z.number().int().min(1).max(7 * 86_400_000).optional(),
    max_parallel: z.number().int().min(1).max(10_000).optional(),
    notify: NotifySchema.optional(),
    steps: z.array(StepSpecSchema).min(1).max(1000),
  })
  .strict();
export type WorkflowSpec = z.infer<typeof WorkflowSpecSchema>;

export const StepStatusSchema = z.enum(["pending", "running", "complete", "failed", "skipped"]);
export type StepStatus = z.infer<typeof StepStatusSchema>;


/** One step (or fanned-out instance) in the state format. */
export const StepStateSchema = z.object({
  status: StepStatusSchema,
  node: z.string().nullable(),
  attempts: z.number().int().min(0),
  tool: z.string(),
  result: z.unknown().optional(),
  error: ErrorBodySchema.optional(),
  started_at: z.string().nullable(),
  ended_at: z.string().nullable(),
  /** Where the runtime placed it and why, while and after it runs. */
  placement: z.string().nullable(),
  /** Steps (by step id) whose output it waits for: the edges of the DAG. */
  needs: z.array(z.string()),
  /** The actor running it now (or last), for inspecting it. */
  actor: z.string().nullable(),
  /** The input it was given, once it started (`$from` resolved). */
  input: z.unknown().optional(),
});
export type StepState = z.infer<typeof StepStateSchema>;

export const WorkflowStatusSchema = z.enum(["running", "complete", "partial", "failed"]);

/** `GET /v1/workflows/:id`: the seed's state format. */
/**
 * Another outcome of the same workflow, reached by a node that owned it at a lower epoch (cut off
 * from the one that took it over) and possibly given to a client already: kept beside the
 * outcome that counts, never silently replaced.
 */
export const WorkflowConflictSchema = z.object({
  /** The node that reached it, and its ownership epoch. */
  owner: z.string(),
  epoch: z.number().int().min(1),
  status: z.enum(["complete", "partial", "failed"]),
  ended_at: z.string().nullable(),
  result: z.record(z.string(), z.unknown()),
});
export type WorkflowConflict = z.infer<typeof WorkflowConflictSchema>;

export const WorkflowStateSchema = z.object({
  workflow_id: z.string(),
  name: z.string(),
  status: WorkflowStatusSchema,
  steps: z.record(z.string(), StepStateSchema),
  started_at: z.string(),
  ended_at: z.string().nullable(),
  /** The node that runs the workflow actor. */
  owner: z.string(),
  progress: z.object({ done: z.number(), total: z.number() }),
  /**
   * Backups that hold a copy, as the owner knows it (a node with a store): 0 means the workflow
   * lives on its owner only for now (no peer was up to take a copy).
   */
  copies: z.number().int().min(0).optional(),
  /**
   * Set while its owner starts no step of it: `minority`, the owner sees no majority of the mesh
   * up (cut off, or most nodes down). Running steps may end and are kept; it resumes when the
   * majority is back, or gives way to a node that took it over meanwhile.
   */
  paused: z.enum(["minority"]).optional(),
  /**
   * Set while its owner has reached an outcome and the nodes that hold copies of it are being
   * told: `status` stays `running` until each has it (or is down while the owner sees a
   * majority), as one of them could still take it over with an older copy.
   */
  ending: z.enum(["replicating"]).optional(),
  /** Outcomes other owners reached for it at lower epochs, when they differ from this one's. */
  conflicts: z.array(WorkflowConflictSchema).max(100).optional(),
});
export type WorkflowState = z.infer<typeof WorkflowStateSchema>;

export const FailureSchema = z.object({ step: z.string(), node: z.string().nullable(), error: ErrorBodySchema, attempts: z.number() });

/** `GET /v1/workflows/:id/result`: the seed's response format. */
export const WorkflowResultSchema = z.object({
  workflow_id: z.string(),
  status: z.enum(["complete", "partial", "failed"]),
  result: z.record(z.string(), z.unknown()),
  steps_completed: z.number().int(),
  steps_failed: z.number().int(),
  total_time_ms: z.number(),
  nodes_used: z.array(z.string()),
  failures: z.array(FailureSchema),
});
export type WorkflowResult = z.infer<typeof WorkflowResultSchema>;

/** One row of `GET /v1/workflows` (and of `workflow.list`). */
export const WorkflowSummarySchema = z.object({
  workflow_id: z.string(),
  name: z.string(),
  status: WorkflowStatusSchema,
  owner: z.string(),
  started_at: z.string(),
  progress: z.object({ done: z.number(), total: z.number() }),
});
export type WorkflowSummary = z.infer<typeof WorkflowSummarySchema>;

/**
 * `workflow.state` / `.result` / `.cancel`: the id as a caller of the API gave it. Not held to
 * WorkflowIdSchema: an id no node knows is answered SHOAL_ERR_UNKNOWN_WORKFLOW, as over HTTP.
 */
export const WorkflowQuerySchema = z.object({ id: z.string().max(64) });

export const WorkflowIdSchema = z.string().regex(/^wf_[a-z0-9]{6,32}$/, "expected wf_<id>");

/** One runnable piece of a step as planned when the workflow was accepted: the step, or one instance of a fan-out. */
export const PlannedInstanceSchema = z.object({
  id: z.string(),
  step: StepIdSchema,
  logic: NameSchema,
  placement: PlacementSchema,
  /** The for_each item handed over as `input.item`. */
  item: z.unknown().optional(),
});
export type PlannedInstance = z.infer<typeof PlannedInstanceSchema>;

/** The owner's record of one instance: what the state format shows of it, and what a restart or takeover resumes from. */
export const InstanceRecordSchema = z.object({
  id: z.string(),
  step: StepIdSchema,
  logic: NameSchema,
  status: StepStatusSchema,
  node: z.string().nullable(),
  attempts: z.number().int().min(0),
  result: z.unknown().optional(),
  error: ErrorBodySchema.optional(),
  startedAt: z.number().nullable(),
  endedAt: z.number().nullable(),
  /** Spawned as a step actor (it may still wait for a slot). */
  spawned: z.boolean(),
  /** The runtime actor of its latest attempt. */
  actor: z.string().nullable(),
  /** Its input once it started, `$from` resolved. */
  input: z.unknown().optional(),
  /**
   * An agent's latest checkpoint of the attempt in `attempts`, as the owner last copied it to its
   * backups (throttled, bounded in size): a backup that takes the workflow over starts the agent
   * from it. Absent for tools, ended instances, and checkpoints over the size bound.
   */
  checkpoint: CheckpointSchema.optional(),
});
export type InstanceRecord = z.infer<typeof InstanceRecordSchema>;

const ReplicaBase = {
  workflow_id: WorkflowIdSchema,
  /** Node id of the owner that sends it. */
  owner: z.string(),
  /** Ownership epoch: 1 when accepted, +1 at each takeover. A lower one than the receiver knows is fenced. */
  epoch: z.number().int().min(1),
};

/**
 * The owner's backups, in the order in which they take over (the first of them that is up when
 * the owner is down): sent with every copy, so that with `--replicas` above 1 only one runs it.
 */
const BackupsSchema = z.array(z.string().max(128)).max(16).optional();

/** Resumes of the workflow begun that have not shown they survive (see QUARANTINE_AFTER_CRASHES); absent from older owners. */
const ResumesSchema = z.number().int().min(0).max(1_000).optional();

/**
 * What is left of the workflow's `deadline_ms` when the copy is sent, absent without a deadline
 * (and from older owners): a duration, which the backup turns into a deadline on its own
 * monotonic clock, since `started_at` is the owner's wall clock and the two nodes' differ.
 */
const DeadlineLeftSchema = z.number().int().min(0).max(7 * 86_400_000).optional();

/**
 * `workflow.replica` (request): an owner -> its backup peer, the same writes as its own store.
 * `started` carries everything (sent first, and again whenever the backup changes); `records`
 * the instance records that changed (and the resume count, once it is cleared); `ended` says
 * the backup can let the copy go.
 */
export const WorkflowReplicaSchema = z.discriminatedUnion("op", [
  z.object({
    op: z.literal("started"),
    ...ReplicaBase,
    spec: z.unknown(),
    instances: z.array(PlannedInstanceSchema),
    started_at: z.number(),
    records: z.array(InstanceRecordSchema),
    resumes: ResumesSchema,
    deadline_left_ms: DeadlineLeftSchema,
    backups: BackupsSchema,
  }),
  z.object({ op: z.literal("records"), ...ReplicaBase, records: z.array(InstanceRecordSchema), resumes: ResumesSchema, backups: BackupsSchema }),
  /**
   * With its final state and result (`ended_at`, the owner's wall time) the backup keeps the
   * ended workflow, readable while the owner is down, for the owner's retention; without them
   * (older owners) it lets the copy go.
   */
  z.object({ op: z.literal("ended"), ...ReplicaBase, ended_at: z.number().optional(), state: WorkflowStateSchema.optional(), result: WorkflowResultSchema.optional() }),
]);
export type WorkflowReplica = z.infer<typeof WorkflowReplicaSchema>;

/** `workflow.claimed` (cast): a node took a workflow over at `epoch`; an owner at a lower epoch stops its copy. */
export const WorkflowClaimSchema = z.object({ workflow_id: WorkflowIdSchema, owner: z.string(), owner_name: z.string(), epoch: z.number().int().min(1) });
export type WorkflowClaim = z.infer<typeof WorkflowClaimSchema>;

/** `workflow.claims` (request): which of these workflows has the receiver taken over? Answered with WorkflowClaim[]. */
export const WorkflowClaimsQuerySchema = z.object({ workflow_ids: z.array(WorkflowIdSchema).max(100_000) });

/**
 * `workflow.copies` (request, empty body): an owner whose store was lost (moved aside as
 * unreadable) asks each peer for the copies it keeps of the sender's workflows. Answered for
 * the sender only: the ended ones (final state and result) and the running ones (as a
 * `started` copy would carry them).
 */
export const WorkflowCopiesSchema = z.object({
  ended: z
    .array(z.object({ workflow_id: WorkflowIdSchema, epoch: z.number().int().min(1), ended_at: z.number(), state: WorkflowStateSchema, result: WorkflowResultSchema }))
    .max(100_000),
  running: z.array(WorkflowReplicaSchema.options[0]).max(100_000),
});
export type WorkflowCopies = z.infer<typeof WorkflowCopiesSchema>;

/** The backup's answer to `workflow.replica`: stored; unknown (send `started` first); or fenced (someone owns it at a higher epoch). */
export const WorkflowReplicaAnswerSchema = z.union([
  z.object({ stored: z.literal(true) }),
  z.object({ unknown: z.literal(true) }),
  z.object({ fenced: WorkflowClaimSchema }),
]);
export type WorkflowReplicaAnswer = z.infer<typeof WorkflowReplicaAnswerSchema>;
