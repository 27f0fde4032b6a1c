import type { ErrorCatalog } from "@shoal/protocol";

/** Codes raised by the actor runtime: spawning, placing, messaging and moving actors. */
export const RuntimeErrors = {
  SHOAL_ERR_UNKNOWN_LOGIC: { status: 404, doc: "no actor logic (machine, tool or agent) is registered under that name" },
  SHOAL_ERR_BAD_INPUT: { status: 400, doc: "the input does not match the logic's input schema; the message names the path" },
  SHOAL_ERR_BAD_OUTPUT: { status: 500, doc: "a tool returned output that does not match its output schema" },
  SHOAL_ERR_NO_NODE: { status: 503, doc: "no up node hosts the logic with the required capabilities (or the pinned node is gone)" },
  SHOAL_ERR_NO_SLOT: { status: 503, doc: "the chosen node had no free slot when the spawn arrived; the spawner queues and retries" },
  SHOAL_ERR_DRAINING: { status: 503, doc: "the node is draining (shutting down) and takes no new actors" },
  SHOAL_ERR_UNKNOWN_ACTOR: { status: 404, doc: "no actor with that id here (never existed, or finished and was forgotten)" },
  SHOAL_ERR_ACTOR_STOPPED: { status: 409, doc: "the actor has stopped or finished and takes no more events" },
  SHOAL_ERR_ASK_TIMEOUT: { status: 504, doc: "an ask got no answer within its timeout" },
  SHOAL_ERR_ACTOR_FAILED: { status: 500, doc: "the actor's logic threw or its machine reached an error; the message carries the cause" },
} as const satisfies ErrorCatalog;

export type RuntimeErrorCode = keyof typeof RuntimeErrors;
