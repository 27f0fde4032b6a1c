import type { ErrorCatalog } from "@shoal/protocol";

/** Codes raised by the orchestrator. */
export const WorkflowErrors = {
  SHOAL_ERR_BAD_SPEC: { status: 400, doc: "the workflow spec is invalid: the message names the step and the problem, the path says where" },
  SHOAL_ERR_UNKNOWN_WORKFLOW: { status: 404, doc: "no node in the mesh knows a workflow with that id" },
  SHOAL_ERR_WORKFLOW_RUNNING: { status: 409, doc: "the workflow has not finished yet, so there is no result" },
  SHOAL_ERR_STEP_TIMEOUT: { status: 504, doc: "a step took longer than its timeout_ms (recorded per attempt)" },
  SHOAL_ERR_DEADLINE: { status: 504, doc: "the workflow's deadline_ms passed while the step was running or waiting" },
  SHOAL_ERR_CANCELLED: { status: 409, doc: "the workflow was cancelled while the step was running or waiting" },
  SHOAL_ERR_MISSING_INPUT: { status: 424, doc: "a step with on_missing: fail needs a step that failed" },
  SHOAL_ERR_STORE: { status: 503, doc: "the workflow store (SQLite in the data dir) could not be opened, read or written" },
} as const satisfies ErrorCatalog;

export type WorkflowErrorCode = keyof typeof WorkflowErrors;
