import { ShoalError, isShoalError } from "@shoal/protocol";
import type { Response } from "undici";
import { z } from "zod";
import { EgressGuard } from "../EgressGuard.js";
import { defineTool } from "../definitions.js";
import { type HttpSettings, maxResponseBytesOf, readBoundedBody } from "./readBoundedBody.js";

export interface LlmSettings {
  /** Base URL of an OpenAI-compatible API, e.g. `http://gpu-01:8080/v1` (llama.cpp, vLLM, Ollama). */
  url?: string | undefined;
  model?: string | undefined;
  apiKey?: string | undefined;
}

const Input = z
  .object({
    prompt: z.string().min(1).max(100_000),
    context: z.unknown().optional(),
    system: z.string().max(20_000).optional(),
    model: z.string().max(200).optional(),
    max_tokens: z.number().int().min(1).max(100_000).optional(),
    temperature: z.number().min(0).max(2).optional(),
    timeout_ms: z.number().int().min(1).max(600_000).default(60_000),
  })
  .strict();

const Completion = z.object({
  model: z.string().optional(),
  choices: z.array(z.object({ message: z.object({ content: z.string().nullable() }), finish_reason: z.string().nullable().optional() })).min(1),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number(), total_tokens: z.number() }).partial().optional(),
});

/**
 * A chat completion from an OpenAI-compatible endpoint; the step's context goes in as JSON. Its
 * answer is read up to `http.maxResponseBytes`. The endpoint's own host is reached whatever its
 * address (the operator named it: a model server on the same box is common); a redirect away
 * from it is held to `http.egress`.
 */
export function llmComplete(settings: LlmSettings, http: HttpSettings = {}) {
  const maxBytes = maxResponseBytesOf(http);
  // Made at the first call, so an endpoint that is not a URL fails the step, not the node's start.
  let egress: EgressGuard | undefined;
  return defineTool({
    name: "llm_complete",
    input: Input,
    async run(input, ctx) {
      if (!settings.url) {
        throw new ShoalError("SHOAL_ERR_TOOL_NOT_CONFIGURED", `llm_complete on ${ctx.node}: no LLM endpoint; set llm-url in the node config or SHOAL_LLM_URL`);
      }
      const url = settings.url.replace(/\/+$/, "").replace(/\/chat\/completions$/, "");
      const user = input.context === undefined ? input.prompt : `${input.prompt}\n\nContext (JSON):\n${JSON.stringify(input.context, null, 2)}`;
      const body = {
        model: input.model ?? settings.model ?? "default",
        messages: [...(input.system ? [{ role: "system", content: input.system }] : []), { role: "user", content: user }],
        ...(input.max_tokens !== undefined && { max_tokens: input.max_tokens }),
        ...(input.temperature !== undefined && { temperature: input.temperature }),
      };
      const cutOff = new AbortController();
      let res: Response;
      try {
        egress ??= (http.egress ?? new EgressGuard()).trusting(new URL(url).hostname);
        res = await egress.fetch(
          `${url}/chat/completions`,
          {
            method: "POST",
            headers: { "content-type": "application/json", ...(settings.apiKey && { authorization: `Bearer ${settings.apiKey}` }) },
            body: JSON.stringify(body),
            signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(input.timeout_ms), cutOff.signal]),
          },
          "llm_complete",
        );
      } catch (err) {
        if (isShoalError(err)) throw err;
        throw new ShoalError("SHOAL_ERR_HTTP_FAILED", `llm_complete: cannot reach ${url}: ${(err as Error).message}`, { cause: err });
      }
      const text = await readBoundedBody(res, maxBytes, `llm_complete: ${url}`, () => cutOff.abort());
      if (!res.ok) throw new ShoalError("SHOAL_ERR_HTTP_FAILED", `llm_complete: ${url} answered ${res.status}: ${text.slice(0, 300)}`);
      let parsed: z.infer<typeof Completion>;
      try {
        parsed = Completion.parse(JSON.parse(text));
      } catch (err) {
        throw new ShoalError("SHOAL_ERR_HTTP_FAILED", `llm_complete: ${url} did not answer in the chat-completions format: ${(err as Error).message.slice(0, 200)}`);
      }
      const choice = parsed.choices[0];
      return { text: choice?.message.content ?? "", model: parsed.model ?? body.model, finish_reason: choice?.finish_reason ?? null, usage: parsed.usage ?? null };
    },
  });
}
