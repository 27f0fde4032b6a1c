import type { ErrorCatalog } from "@shoal/protocol";

/** Codes raised by plugin loading and the built-in tools. */
export const ToolErrors = {
  SHOAL_ERR_BAD_PLUGIN: { status: 400, doc: "a --plugin module cannot be loaded or exports something that is not a tool or agent" },
  SHOAL_ERR_TOOL_NOT_CONFIGURED: { status: 503, doc: "a built-in tool needs a setting this node does not have (LLM endpoint, camera folder)" },
  SHOAL_ERR_HTTP_FAILED: { status: 502, doc: "http_request or llm_complete could not reach the server, or it answered with an error status" },
  SHOAL_ERR_RESPONSE_TOO_LARGE: { status: 502, doc: "http_request or llm_complete got a response body over --http-max-response-bytes (by its Content-Length, or counted as it came); the request was cut off" },
  SHOAL_ERR_EGRESS_DENIED: {
    status: 403,
    doc: "http_request, llm_complete or a webhook would connect to an address the node's egress rules refuse (loopback, unspecified, link-local, metadata by default; egress-deny); the message names the host, its address and the egress-allow setting that lets it through",
  },
  SHOAL_ERR_NO_FRAMES: { status: 404, doc: "vision_agent found no PNG or JPEG frames in the camera folder" },
  SHOAL_ERR_BAD_IMAGE: { status: 422, doc: "a frame could not be decoded as PNG or JPEG" },
} as const satisfies ErrorCatalog;

export type ToolErrorCode = keyof typeof ToolErrors;
