import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { NameSchema, ShoalError, describeZodError } from "@shoal/protocol";
import { z } from "zod";
import type { Definition } from "./definitions.js";

const fn = z.custom<(...args: unknown[]) => unknown>((v) => typeof v === "function", "expected a function");
const schema = z.custom<z.ZodType>((v) => typeof (v as { safeParse?: unknown })?.safeParse === "function", "expected a zod schema");
const machine = z.custom<object>(
  (v) => typeof (v as { transition?: unknown })?.transition === "function" && typeof (v as { getInitialSnapshot?: unknown })?.getInitialSnapshot === "function",
  "expected an XState machine",
);
const ToolShape = z.object({ name: NameSchema, capabilities: z.array(NameSchema).optional(), input: schema.optional(), output: schema.optional(), run: fn }).strict();
const AgentShape = z.object({ name: NameSchema, capabilities: z.array(NameSchema).optional(), input: schema.optional(), machine }).strict();

/** Checks what a plugin module exports: one definition or an array of them. */
export function parseDefinitions(exported: unknown, source: string): Definition[] {
  const defs = Array.isArray(exported) ? exported : [exported];
  return defs.map((def, i) => {
    const asAgent = typeof def === "object" && def !== null && "machine" in def;
    const parsed = (asAgent ? AgentShape : ToolShape).safeParse(def);
    if (!parsed.success) {
      const { message } = describeZodError(parsed.error);
      const name = typeof (def as { name?: unknown })?.name === "string" ? ` (${(def as { name: string }).name})` : "";
      throw new ShoalError("SHOAL_ERR_BAD_PLUGIN", `${source}: export ${i}${name} is not a valid ${asAgent ? "agent ({name, machine})" : "tool ({name, run})"}: ${message}`);
    }
    return def as Definition;
  });
}

/**
 * Loads `--plugin` modules. A path (starting with `.` or `/`) is resolved against `cwd`;
 * anything else is imported as a package name. Each default-exports definitions.
 */
export async function loadPlugins(modules: string[], cwd = process.cwd()): Promise<Definition[]> {
  const all: Definition[] = [];
  for (const mod of modules) {
    const specifier = mod.startsWith(".") || isAbsolute(mod) ? pathToFileURL(resolve(cwd, mod)).href : mod;
    let exported: unknown;
    try {
      exported = (await import(specifier)).default;
    } catch (err) {
      throw new ShoalError("SHOAL_ERR_BAD_PLUGIN", `--plugin ${mod}: cannot load: ${(err as Error).message.split("\n")[0]}`, { cause: err });
    }
    all.push(...parseDefinitions(exported, `--plugin ${mod}`));
  }
  return all;
}
