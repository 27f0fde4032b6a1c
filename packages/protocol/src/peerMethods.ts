import { z } from "zod";
import {
  ActorDescriptionSchema,
  ActorOutcomeSchema,
  ActorQuerySchema,
  ActorUpdateSchema,
  AskRequestSchema,
  HandoffRequestSchema,
  HoldsReplySchema,
  HoldsRequestSchema,
  HostReplySchema,
  SendRequestSchema,
  SnapshotViewSchema,
  SpawnReplySchema,
  SpawnRequestSchema,
  StopRequestSchema,
} from "./actors.js";
import { InspectEventsSchema, InspectSubscribeSchema } from "./inspect.js";
import {
  WorkflowClaimSchema,
  WorkflowClaimsQuerySchema,
  WorkflowCopiesSchema,
  WorkflowQuerySchema,
  WorkflowReplicaAnswerSchema,
  WorkflowReplicaSchema,
  WorkflowResultSchema,
  WorkflowStateSchema,
  WorkflowSummarySchema,
} from "./workflow.js";

/**
 * Who may send a node-to-node message: a rule the receiving node evaluates with the sender the
 * handshake authenticated and the message's body. Anything but `member` is checked by the
 * package that knows the answer (runtime, workflow); a message that breaks its rule is refused
 * with SHOAL_ERR_PEER_FORBIDDEN.
 */
export const PEER_SENDERS = {
  member: "any member of the mesh: an entry point relaying an API call to the node that can answer it",
  supervisor: "the actor's supervisor: the node its id is named after (and, for host.spawn, naming itself as supervisor); to a host, the one that placed it there",
  host: "the node the actor's supervisor placed it on at that epoch, about an actor this node supervises",
  owner: "the workflow's owner, naming itself: the owner known here at that epoch, or at the next epoch the node that took it over (for a workflow owned here, one that was given its copy)",
  claimer: "a node claiming a workflow for itself at the epoch after the one known here; for a workflow owned here, only a node that was given its copy",
  reporter: "the node the events are about: every event names its sender as its node, so no peer puts words in another's devtools rows",
} as const;
export type PeerSender = keyof typeof PEER_SENDERS;

export interface PeerRequestSpec<Req extends z.ZodType = z.ZodType, Res extends z.ZodType = z.ZodType, S extends PeerSender = PeerSender> {
  kind: "request";
  request: Req;
  response: Res;
  sender: S;
}

export interface PeerCastSpec<Req extends z.ZodType = z.ZodType, S extends PeerSender = PeerSender> {
  kind: "cast";
  request: Req;
  sender: S;
}

export type PeerMethodSpec = PeerRequestSpec | PeerCastSpec;
/** A table of methods; the transport takes one (PEER_METHODS unless a test brings its own). */
export type PeerMethodTable = Readonly<Record<string, PeerMethodSpec>>;

const request = <Req extends z.ZodType, Res extends z.ZodType, S extends PeerSender>(req: Req, res: Res, sender: S): PeerRequestSpec<Req, Res, S> => ({
  kind: "request",
  request: req,
  response: res,
  sender,
});
const cast = <Req extends z.ZodType, S extends PeerSender>(req: Req, sender: S): PeerCastSpec<Req, S> => ({ kind: "cast", request: req, sender });

/**
 * Every method one node calls on another, once: its request schema, its response schema (casts
 * have none) and who may send it. The transport refuses a method that is not here, a body that
 * fails its schema, and an answer that fails its schema; the rule is the receiver's to check.
 * Membership gossip is not a method but a frame (`gossip`): a node speaks only for itself about
 * its tools, slots, load and incarnation; see the mesh README.
 */
export const PEER_METHODS = {
  /** Supervisor -> host: run this actor here at this epoch. */
  "host.spawn": request(SpawnRequestSchema, SpawnReplySchema, "supervisor"),
  "host.send": request(SendRequestSchema, HostReplySchema, "supervisor"),
  "host.ask": request(AskRequestSchema, HostReplySchema, "supervisor"),
  /** Answered with whether that placement was running here. */
  "host.stop": request(StopRequestSchema, z.boolean(), "supervisor"),
  /** Which of these actors, placed here before the link came up, still run here. */
  "host.holds": request(HoldsRequestSchema, HoldsReplySchema, "supervisor"),
  /** Host -> supervisor, coalesced and droppable. */
  "sup.update": cast(ActorUpdateSchema, "host"),
  /** Host -> supervisor, retried until answered. */
  "sup.outcome": request(ActorOutcomeSchema, z.null(), "host"),
  /** A draining host gives a machine actor back. */
  "sup.handoff": request(HandoffRequestSchema, z.null(), "host"),
  /** Anyone -> the actor's supervisor, which routes to wherever it runs. */
  "actor.send": request(SendRequestSchema, z.null(), "member"),
  "actor.ask": request(AskRequestSchema, SnapshotViewSchema, "member"),
  "actor.stop": request(ActorQuerySchema, z.null(), "member"),
  "actor.get": request(ActorQuerySchema, ActorDescriptionSchema, "member"),
  /** Anyone -> every peer; the owner answers, the others SHOAL_ERR_UNKNOWN_WORKFLOW. */
  "workflow.state": request(WorkflowQuerySchema, WorkflowStateSchema, "member"),
  "workflow.result": request(WorkflowQuerySchema, WorkflowResultSchema, "member"),
  "workflow.cancel": request(WorkflowQuerySchema, WorkflowStateSchema, "member"),
  "workflow.list": request(z.object({}), z.array(WorkflowSummarySchema).max(100_000), "member"),
  /** Owner -> its backup: the same writes as its own store. */
  "workflow.replica": request(WorkflowReplicaSchema, WorkflowReplicaAnswerSchema, "owner"),
  /** A restarted owner asks who took its workflows over. */
  "workflow.claims": request(WorkflowClaimsQuerySchema, z.array(WorkflowClaimSchema).max(100_000), "member"),
  /** An owner whose store was lost asks for the copies its peers keep of its workflows (each answers for the sender only). */
  "workflow.copies": request(z.object({}), WorkflowCopiesSchema, "member"),
  /** A node that took a workflow over tells its peers. */
  "workflow.claimed": cast(WorkflowClaimSchema, "claimer"),
  /** Devtools on one node lease the inspection events of the others. */
  "inspect.subscribe": cast(InspectSubscribeSchema, "member"),
  "inspect.events": cast(InspectEventsSchema, "reporter"),
} as const satisfies PeerMethodTable;

export type PeerMethods = typeof PEER_METHODS;

/** Names of a table's request methods. */
export type RequestMethodOf<M extends PeerMethodTable> = { [K in keyof M & string]: M[K] extends PeerRequestSpec ? K : never }[keyof M & string];
/** Names of a table's cast methods. */
export type CastMethodOf<M extends PeerMethodTable> = { [K in keyof M & string]: M[K] extends PeerCastSpec ? K : never }[keyof M & string];
/** What a sender passes for a method... */
export type PeerRequestInput<M extends PeerMethodTable, K extends keyof M> = z.input<M[K]["request"]>;
/** ...and what the receiver's handler gets, parsed. */
export type PeerRequestBody<M extends PeerMethodTable, K extends keyof M> = z.output<M[K]["request"]>;
/** What a handler answers... */
export type PeerResponseInput<M extends PeerMethodTable, K extends keyof M> = M[K] extends PeerRequestSpec<z.ZodType, infer R> ? z.input<R> : never;
/** ...and what the caller gets, parsed. */
export type PeerResponseBody<M extends PeerMethodTable, K extends keyof M> = M[K] extends PeerRequestSpec<z.ZodType, infer R> ? z.output<R> : never;
