import { ShoalError, isShoalError } from "@shoal/protocol";
import type { Response } from "undici";
import { z } from "zod";
import { EgressGuard } from "../EgressGuard.js";
import { defineTool } from "../definitions.js";
import { type HttpSettings, maxResponseBytesOf, readBoundedBody } from "./readBoundedBody.js";

const Input = z
  .object({
    url: z.url({ protocol: /^https?$/ }),
    method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]).default("GET"),
    headers: z.record(z.string(), z.string()).default({}),
    body: z.unknown().optional(),
    timeout_ms: z.number().int().min(1).max(600_000).default(10_000),
  })
  .strict();

/**
 * Calls an HTTP endpoint; JSON answers are parsed. A 4xx/5xx is an error, so the step retries.
 * The answer's body is read up to `maxResponseBytes` (SHOAL_ERR_RESPONSE_TOO_LARGE past it).
 * Every connection, redirects' too, is held to the egress rules (SHOAL_ERR_EGRESS_DENIED). The
 * request carries `Idempotency-Key: workflow_id/step_id`, the same on every retry and migration,
 * unless the step's headers set one.
 */
export function httpRequest(settings: HttpSettings = {}) {
  const maxBytes = maxResponseBytesOf(settings);
  const egress = settings.egress ?? new EgressGuard();
  return defineTool({
    name: "http_request",
    input: Input,
    async run(input, ctx) {
      const json = input.body !== undefined && typeof input.body !== "string";
      const what = `${input.method} ${input.url}`;
      const cutOff = new AbortController();
      const keyed = Object.keys(input.headers).some((h) => h.toLowerCase() === "idempotency-key");
      let res: Response;
      try {
        res = await egress.fetch(
          input.url,
          {
            method: input.method,
            headers: { ...(json && { "content-type": "application/json" }), ...(!keyed && { "idempotency-key": ctx.key }), ...input.headers },
            body: input.body === undefined ? undefined : json ? JSON.stringify(input.body) : (input.body as string),
            signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(input.timeout_ms), cutOff.signal]),
          },
          what,
        );
      } catch (err) {
        if (isShoalError(err)) throw err;
        throw new ShoalError("SHOAL_ERR_HTTP_FAILED", `${what}: ${(err as Error).message}`, { cause: err });
      }
      const text = await readBoundedBody(res, maxBytes, what, () => cutOff.abort());
      const type = res.headers.get("content-type") ?? "";
      let body: unknown = text;
      if (type.includes("json")) {
        try {
          body = JSON.parse(text);
        } catch {
          body = text; // a server that says JSON and sends something else: keep the text
        }
      }
      if (res.status >= 400) throw new ShoalError("SHOAL_ERR_HTTP_FAILED", `${what} answered ${res.status}: ${text.slice(0, 200)}`);
      return { status: res.status, headers: Object.fromEntries(res.headers.entries()), body };
    },
  });
}
