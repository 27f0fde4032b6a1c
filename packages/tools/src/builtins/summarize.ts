import { z } from "zod";
import { defineTool } from "../definitions.js";

const Input = z.object({ prompt: z.string().max(10_000).optional(), context: z.unknown(), title: z.string().max(200).optional() });

/**
 * A plain-text report from structured step outputs: one line per item with its scalar fields,
 * and a headline counting verdicts when items have one. Used when no LLM endpoint is set.
 */
export const summarize = defineTool({
  name: "summarize",
  input: Input,
  run(input) {
    const items = Array.isArray(input.context) ? input.context : input.context === undefined || input.context === null ? [] : [input.context];
    const lines = items.map((item, i) => `- ${describe(item, i)}`);
    const verdicts = new Map<string, number>();
    for (const item of items) {
      const v = (item as { verdict?: unknown })?.verdict;
      if (typeof v === "string") verdicts.set(v, (verdicts.get(v) ?? 0) + 1);
    }
    const counts = [...verdicts.entries()].map(([v, n]) => `${n} ${v}`).join(", ");
    const headline =
      items.length === 0
        ? "Nothing to summarize: no step produced output."
        : verdicts.size === 1 && verdicts.has("normal")
          ? `All ${items.length} reports show normal operation.`
          : `${items.length} report${items.length === 1 ? "" : "s"}${counts ? `: ${counts}` : ""}.`;
    const title = input.title ?? input.prompt;
    const summary = [title ? `${title}` : undefined, headline, ...lines].filter(Boolean).join("\n");
    return { summary, items: items.length, verdicts: Object.fromEntries(verdicts) };
  },
});

function describe(item: unknown, i: number): string {
  if (item === null || typeof item !== "object") return String(item);
  const o = item as Record<string, unknown>;
  const name = o.camera ?? o.node ?? o.name ?? o.id ?? `item ${i + 1}`;
  const fields = Object.entries(o)
    .filter(([k, v]) => k !== "camera" && k !== "node" && k !== "name" && k !== "id" && (typeof v === "number" || typeof v === "string" || typeof v === "boolean"))
    .map(([k, v]) => `${k} ${typeof v === "number" ? Number(v.toFixed(3)) : v}`);
  return `${name}: ${fields.join(", ") || JSON.stringify(o).slice(0, 200)}`;
}
