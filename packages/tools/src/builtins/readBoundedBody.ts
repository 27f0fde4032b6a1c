import { LIMIT_DEFAULTS, ShoalError } from "@shoal/protocol";
import type { Response } from "undici";
import type { EgressGuard } from "../EgressGuard.js";

/** Settings of the built-in tools that talk HTTP (`http_request`, `llm_complete`). */
export interface HttpSettings {
  /** Largest response body they read (`--http-max-response-bytes`, 10 MiB by default). */
  maxResponseBytes?: number | undefined;
  /**
   * What they may connect to (`egress-allow`, `egress-deny`); without one, the default rules:
   * no loopback, unspecified, link-local or metadata addresses; the LAN and the internet pass.
   */
  egress?: EgressGuard | undefined;
}

export const maxResponseBytesOf = (settings: HttpSettings = {}) => settings.maxResponseBytes ?? LIMIT_DEFAULTS["http-max-response-bytes"];

/**
 * Reads a response body as text, never more than `maxBytes` of it: a Content-Length above the
 * limit is refused before anything is read, and since a length can lie (or be absent, chunked),
 * the body is counted as it streams in, and cut off with `abort()` (which should end the request)
 * once it passes the limit. Decompressed bytes are what count. SHOAL_ERR_RESPONSE_TOO_LARGE
 * names `what`, the limit and its flag; a body that breaks off is SHOAL_ERR_HTTP_FAILED.
 */
export async function readBoundedBody(res: Response, maxBytes: number, what: string, abort: () => void): Promise<string> {
  const tooLarge = (size: string) =>
    new ShoalError("SHOAL_ERR_RESPONSE_TOO_LARGE", `${what}: the response body is ${size}, over the limit of ${maxBytes} bytes (--http-max-response-bytes)`);
  const declared = Number(res.headers.get("content-length") ?? Number.NaN);
  if (declared > maxBytes) {
    abort();
    await res.body?.cancel().catch(() => {});
    throw tooLarge(`${declared} bytes (Content-Length)`);
  }
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        abort();
        await reader.cancel().catch(() => {});
        throw tooLarge(`more than that (${total} bytes read when it was cut off)`);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof ShoalError) throw err;
    throw new ShoalError("SHOAL_ERR_HTTP_FAILED", `${what}: the response body broke off: ${(err as Error).message}`, { cause: err });
  }
  return new TextDecoder().decode(Buffer.concat(chunks, total));
}
