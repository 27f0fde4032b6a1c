export { ShoalError, isShoalError } from "./ShoalError.js";
export type { ErrorCatalog, ErrorSpec } from "./ShoalError.js";
export { ErrorBodySchema, MAX_ERROR_MESSAGE_CHARS, clipMessage, errorBodyOf } from "./errorBody.js";
export type { ErrorBody } from "./errorBody.js";
export { ProtocolErrors } from "./errors.js";
export type { ProtocolErrorCode } from "./errors.js";
export { CloseCodes } from "./closeCodes.js";
export type { CloseCode } from "./closeCodes.js";
export { EGRESS_CLASSES, EgressRuleSchema, egressRules, isIpAddress } from "./egressRules.js";
export type { EgressClass, EgressRefusal, EgressRules } from "./egressRules.js";
export { PROTOCOL_VERSION, DEFAULT_MAX_FRAME_BYTES } from "./version.js";
export {
  AddressSchema,
  MAX_INCARNATION,
  MemberSchema,
  NameSchema,
  NodeIdentitySchema,
  NodeStatusSchema,
} from "./member.js";
export type { Member, NodeIdentity, NodeStatus } from "./member.js";
export {
  AuthFrameSchema,
  CastFrameSchema,
  ErrorFrameSchema,
  FrameSchema,
  GossipFrameSchema,
  HelloFrameSchema,
  PingFrameSchema,
  PongFrameSchema,
  ReadyFrameSchema,
  RequestFrameSchema,
  ResponseFrameSchema,
} from "./frames.js";
export type { CastFrame, Frame, FrameOf, FrameType, GossipFrame, HelloFrame, RequestFrame, ResponseFrame } from "./frames.js";
export { createCodec, describeZodError, schemaErrorOf } from "./codec.js";
export type { Codec, CodecOptions } from "./codec.js";
export { NODE_CONFIG_DEFAULTS, NodeConfigFileSchema, NodeConfigSchema } from "./nodeConfig.js";
export type { NodeConfig, NodeConfigFile } from "./nodeConfig.js";
export { LIMITS, LIMIT_DEFAULTS, QUARANTINE_AFTER_CRASHES } from "./limits.js";
export type { LimitKey } from "./limits.js";
export {
  ApiErrorResponseSchema,
  HealthzResponseSchema,
  NodeRowSchema,
  NodesResponseSchema,
  WorkflowAcceptedSchema,
  WorkflowListResponseSchema,
} from "./api.js";
export type { ApiErrorResponse, HealthzResponse, NodeRow, NodesResponse, WorkflowAccepted, WorkflowListResponse } from "./api.js";
export { silentLogger } from "./Logger.js";
export { monotonicNow } from "./monotonicNow.js";
export type { Clock } from "./monotonicNow.js";
export { LogLimiter } from "./LogLimiter.js";
export type { LogLimiterOptions } from "./LogLimiter.js";
export type { LogFn, Logger } from "./Logger.js";
export {
  ActorDescriptionSchema,
  ActorIdSchema,
  ActorOutcomeSchema,
  ActorQuerySchema,
  ActorRowSchema,
  ActorUpdateSchema,
  AskApiRequestSchema,
  AskRequestSchema,
  CheckpointSchema,
  EventApiRequestSchema,
  EventSchema,
  HandoffRequestSchema,
  HoldsReplySchema,
  HoldsRequestSchema,
  HostReplySchema,
  PlacementDecisionSchema,
  PlacementSchema,
  SendRequestSchema,
  SnapshotViewSchema,
  SpawnApiRequestSchema,
  SpawnReplySchema,
  SpawnRequestSchema,
  StopRequestSchema,
  TimerSchema,
} from "./actors.js";
export type {
  ActorDescription,
  ActorEvent,
  ActorOutcome,
  ActorRow,
  ActorUpdate,
  Checkpoint,
  HostReply,
  Placement,
  PlacementDecision,
  SnapshotView,
  SpawnRequest,
  Timer,
} from "./actors.js";
export {
  FailureSchema,
  ForEachSchema,
  InstanceRecordSchema,
  NotifySchema,
  PlannedInstanceSchema,
  StepIdSchema,
  StepSpecSchema,
  StepStateSchema,
  StepStatusSchema,
  WorkflowClaimSchema,
  WorkflowClaimsQuerySchema,
  WorkflowConflictSchema,
  WorkflowCopiesSchema,
  WorkflowEventNameSchema,
  WebhookNoticeSchema,
  WebhookPayloadSchema,
  WorkflowIdSchema,
  WorkflowQuerySchema,
  WorkflowReplicaAnswerSchema,
  WorkflowReplicaSchema,
  WorkflowResultSchema,
  WorkflowSpecSchema,
  WorkflowStateSchema,
  WorkflowStatusSchema,
  WorkflowSummarySchema,
} from "./workflow.js";
export type {
  InstanceRecord,
  PlannedInstance,
  StepSpec,
  StepState,
  StepStatus,
  WorkflowClaim,
  WorkflowConflict,
  WorkflowCopies,
  WorkflowEventName,
  WebhookNotice,
  WebhookPayload,
  WorkflowReplica,
  WorkflowReplicaAnswer,
  WorkflowResult,
  WorkflowSpec,
  WorkflowState,
  WorkflowSummary,
} from "./workflow.js";
export { PEER_METHODS, PEER_SENDERS } from "./peerMethods.js";
export type {
  CastMethodOf,
  PeerCastSpec,
  PeerMethodSpec,
  PeerMethodTable,
  PeerMethods,
  PeerRequestBody,
  PeerRequestInput,
  PeerRequestSpec,
  PeerResponseBody,
  PeerResponseInput,
  PeerSender,
  RequestMethodOf,
} from "./peerMethods.js";
export {
  ActorInspectEventSchema,
  DroppedInspectEventSchema,
  InspectEventSchema,
  InspectEventsSchema,
  InspectFilterSchema,
  InspectSubscribeSchema,
  MemberInspectEventSchema,
  PlacementInspectEventSchema,
  WorkflowInspectEventSchema,
} from "./inspect.js";
export type { ActorInspectEvent, InspectEvent, InspectFilter } from "./inspect.js";
export { LogicInfoSchema, StateChartSchema } from "./logic.js";
export type { LogicInfo, StateChart } from "./logic.js";
