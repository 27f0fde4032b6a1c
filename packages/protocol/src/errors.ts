import type { ErrorCatalog } from "./ShoalError.js";

/** Codes raised by the wire codec and schema checks. */
export const ProtocolErrors = {
  SHOAL_ERR_BAD_FRAME: { status: 400, doc: "bytes that are not a MessagePack value" },
  SHOAL_ERR_BAD_SCHEMA: { status: 400, doc: "a decoded value that matches no frame schema; the message names the zod path" },
  SHOAL_ERR_FRAME_TOO_LARGE: { status: 413, doc: "a frame over the codec's maximum size, on encode or decode" },
  SHOAL_ERR_PROTOCOL_VERSION: { status: 400, doc: "a peer speaks another protocol version" },
  SHOAL_ERR_OVERLOADED: { status: 429, doc: "a node is at one of its admission limits (the message names the flag); try again later (HTTP answers carry Retry-After)" },
} as const satisfies ErrorCatalog;

export type ProtocolErrorCode = keyof typeof ProtocolErrors;
