import { z } from "zod";
import { isShoalError } from "./ShoalError.js";

/** Longest error message carried: a tool that throws a whole response body does not fill a frame or a state. */
export const MAX_ERROR_MESSAGE_CHARS = 10_000;

/**
 * What every refusal and failure looks like wherever it travels: an API answer's `error`, a
 * frame's, a failed step's or actor's. One schema, so a client parses what a peer or node sent.
 */
export const ErrorBodySchema = z.object({
  code: z.string().max(100),
  message: z.string().max(MAX_ERROR_MESSAGE_CHARS),
  /** Where in the request the problem is (a zod path), when there is one. */
  path: z.array(z.union([z.string(), z.number()])).max(100).optional(),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

const CODE = /^[A-Z][A-Z0-9_]{0,99}$/;

/**
 * The body of anything thrown: a ShoalError's own, a coded error from elsewhere (an error body a
 * peer sent, a tool's `{code, message}`) as it is, anything else under `fallbackCode`. The
 * message is clipped to MAX_ERROR_MESSAGE_CHARS.
 */
export function errorBodyOf(err: unknown, fallbackCode: string): ErrorBody {
  if (isShoalError(err)) return err.toBody();
  const e = err as { code?: unknown; message?: unknown } | null | undefined;
  const code = typeof e?.code === "string" && CODE.test(e.code) ? e.code : fallbackCode;
  return { code, message: clipMessage(typeof e?.message === "string" ? e.message : String(err)) };
}

export function clipMessage(message: string): string {
  return message.length > MAX_ERROR_MESSAGE_CHARS ? `${message.slice(0, MAX_ERROR_MESSAGE_CHARS - 3)}...` : message;
}
