/**
 * The schemas of what the HTTP API and `WS /v1/inspect` answer, for a browser page (devtools) to
 * parse them: a subpath of its own (`@shoal/protocol/web`) because the package's index also
 * holds the codec and the logger, which need Node.
 */
export { ActorDescriptionSchema } from "./actors.js";
export { ApiErrorResponseSchema, NodesResponseSchema, WorkflowListResponseSchema } from "./api.js";
export { InspectEventSchema } from "./inspect.js";
export { LogicInfoSchema } from "./logic.js";
export { WorkflowStateSchema } from "./workflow.js";
