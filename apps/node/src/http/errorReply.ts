import type { ErrorBody, ShoalError } from "@shoal/protocol";
import { allErrors } from "../errors.js";

export interface ErrorReply {
  status: number;
  /** `Retry-After` on a refusal under load. */
  headers: Record<string, string>;
  body: { error: ErrorBody };
}

/**
 * What a refusal looks like on the wire, whether Fastify sends it or a raw socket does: the
 * status of its code (400 for a code no catalog knows), `{"error":{"code","message","path"?}}`,
 * and for SHOAL_ERR_OVERLOADED `Retry-After` in whole seconds, rounded up, at least 1.
 */
export function errorReply(err: ShoalError, status: number = allErrors[err.code]?.status ?? 400): ErrorReply {
  const overloaded = err.code === "SHOAL_ERR_OVERLOADED" || err.retryAfterMs !== undefined;
  const headers: Record<string, string> = overloaded ? { "retry-after": String(Math.max(1, Math.ceil((err.retryAfterMs ?? 0) / 1000))) } : {};
  return { status, headers, body: { error: err.toBody() } };
}
