import type { ErrorCatalog } from "@shoal/protocol";

/** Codes raised by the orchestrator. */
export const WorkflowErrors = {
  SHOAL_ERR_BAD_SPEC: { status: 400, doc: "the workflow spec is invalid: the message names the step and the problem, the path says where" },
  SHOAL_ERR_TOO_MANY_INSTANCES: { status: 400, doc: "the workflow would have more instances than --max-workflow-instances (or more waits between instances than 10 times that); the message names the step at which it went over, the path its for_each or needs" },
  SHOAL_ERR_SPEC_TOO_LARGE: { status: 400, doc: "the step input copied into each instance would come to more than 64 MiB for the workflow; the message names the step" },
  SHOAL_ERR_QUARANTINED: { status: 500, doc: "the workflow crashed its owner each of the last 2 times it was resumed; it was ended failed instead of being run again" },
  SHOAL_ERR_UNKNOWN_WORKFLOW: { status: 404, doc: "no node in the mesh knows a workflow with that id" },
  SHOAL_ERR_OWNER_UNAVAILABLE: {
    status: 503,
    doc: "the workflow's id names its owner, which is down, and no live node holds a copy of it (its backups are down too); the message names the owner; try again once it is back (Retry-After: 1)",
  },
  SHOAL_ERR_RESUMING: {
    status: 503,
    doc: "the workflow's owner (or the node asked) has just started and is taking its workflows back from its store, or is still joining the mesh: the answer is a moment away (Retry-After: 1)",
  },
  SHOAL_ERR_HANDED_OVER: {
    status: 503,
    doc: "between nodes only: the node asked gave the workflow way to another (named in the message); the asker asks the others, and tells its client SHOAL_ERR_OWNER_UNAVAILABLE if none answers",
  },
  SHOAL_ERR_MINORITY: {
    status: 503,
    doc: "the result was asked of the workflow's owner while it sees only a minority of the mesh (a partition): its steps are paused, and a node on the majority side may have taken it over and ended it, so it does not say the workflow still runs; ask a node on the majority side, or again after the heal (Retry-After: 1); the state says `paused: \"minority\"`",
  },
  SHOAL_ERR_WORKFLOW_RUNNING: { status: 409, doc: "the workflow has not finished yet, so there is no result" },
  SHOAL_ERR_STEP_TIMEOUT: { status: 504, doc: "a step took longer than its timeout_ms (recorded per attempt)" },
  SHOAL_ERR_DEADLINE: { status: 504, doc: "the workflow's deadline_ms passed while the step was running or waiting" },
  SHOAL_ERR_CANCELLED: { status: 409, doc: "the workflow was cancelled while the step was running or waiting" },
  SHOAL_ERR_MISSING_INPUT: { status: 424, doc: "a step with on_missing: fail needs a step that failed" },
  SHOAL_ERR_STORE: { status: 503, doc: "the workflow store (SQLite in the data dir) could not be opened, read or written" },
  SHOAL_ERR_STORE_UNAVAILABLE: {
    status: 503,
    doc: "the workflow store cannot be written now (disk full, read-only, I/O errors): new workflows are refused (Retry-After: 1) until a probe, every second, finds it writable; running ones go on and are stored then",
  },
} as const satisfies ErrorCatalog;

export type WorkflowErrorCode = keyof typeof WorkflowErrors;
