/**
 * `{"$from": "stepId"}` or `{"$from": "stepId.path.to.field"}` anywhere in a step's input is
 * replaced by that step's output (a path walks into it; numbers index lists).
 */
export interface FromRef {
  step: string;
  path: string[];
}

function asRef(value: unknown): FromRef | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  const from = (value as { $from?: unknown }).$from;
  if (keys.length !== 1 || typeof from !== "string") return undefined;
  const [step = "", ...path] = from.split(".");
  return { step, path };
}

/** Every `$from` in an input, with where it sits. */
export function collectFromRefs(input: unknown, at: (string | number)[] = []): { ref: FromRef; at: (string | number)[] }[] {
  const ref = asRef(input);
  if (ref) return [{ ref, at }];
  if (Array.isArray(input)) return input.flatMap((v, i) => collectFromRefs(v, [...at, i]));
  if (input !== null && typeof input === "object") return Object.entries(input).flatMap(([k, v]) => collectFromRefs(v, [...at, k]));
  return [];
}

/** The input with every `$from` replaced; a step without output (failed) gives `null`. */
export function resolveFromRefs(input: unknown, outputs: ReadonlyMap<string, unknown>): unknown {
  const ref = asRef(input);
  if (ref) {
    let value: unknown = outputs.has(ref.step) ? outputs.get(ref.step) : null;
    for (const key of ref.path) {
      if (value === null || typeof value !== "object") return null;
      value = (value as Record<string, unknown>)[key];
    }
    return value ?? null;
  }
  if (Array.isArray(input)) return input.map((v) => resolveFromRefs(v, outputs));
  if (input !== null && typeof input === "object") return Object.fromEntries(Object.entries(input).map(([k, v]) => [k, resolveFromRefs(v, outputs)]));
  return input;
}
