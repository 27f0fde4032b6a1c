import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { NameSchema, ShoalError, describeZodError } from "@shoal/protocol";
import type { HostedLogic } from "@shoal/runtime";
import { z } from "zod";

const fn = z.custom<(...args: unknown[]) => unknown>((v) => typeof v === "function", "expected a function");
const schema = z.custom<z.ZodType>((v) => typeof (v as { safeParse?: unknown })?.safeParse === "function", "expected a zod schema");
const machine = z.custom<object>((v) => typeof (v as { transition?: unknown })?.transition === "function" && typeof (v as { getInitialSnapshot?: unknown })?.getInitialSnapshot === "function", "expected an XState machine");

/** A tool (a function actor) or an agent (a state machine actor), as a plugin exports it. */
const ToolDefinitionSchema = z
  .object({ name: NameSchema, capabilities: z.array(NameSchema).optional(), input: schema.optional(), output: schema.optional(), run: fn })
  .strict();
const AgentDefinitionSchema = z
  .object({ name: NameSchema, capabilities: z.array(NameSchema).optional(), input: schema.optional(), machine })
  .strict();
const DefinitionSchema = z.union([ToolDefinitionSchema, AgentDefinitionSchema]);

/**
 * Loads `--plugin` modules: each default-exports a tool or agent definition or an array of them.
 * A path (starting with `.` or `/`) is resolved against the working directory, anything else is
 * imported as a package name.
 */
export async function loadPlugins(modules: string[], cwd = process.cwd()): Promise<HostedLogic[]> {
  const logic: HostedLogic[] = [];
  for (const mod of modules) {
    const specifier = mod.startsWith(".") || isAbsolute(mod) ? pathToFileURL(resolve(cwd, mod)).href : mod;
    let exported: unknown;
    try {
      exported = (await import(specifier)).default;
    } catch (err) {
      throw new ShoalError("SHOAL_ERR_BAD_PLUGIN", `--plugin ${mod}: cannot load: ${(err as Error).message.split("\n")[0]}`, { cause: err });
    }
    const defs = Array.isArray(exported) ? exported : [exported];
    defs.forEach((def, i) => {
      const parsed = DefinitionSchema.safeParse(def);
      if (!parsed.success) {
        const { message } = describeZodError(parsed.error);
        const name = typeof (def as { name?: unknown })?.name === "string" ? ` (${(def as { name: string }).name})` : "";
        throw new ShoalError("SHOAL_ERR_BAD_PLUGIN", `--plugin ${mod}: export ${i}${name} is neither a tool ({name, run}) nor an agent ({name, machine}): ${message}`);
      }
      const d = parsed.data;
      const base = { name: d.name, ...(d.capabilities && { capabilities: d.capabilities }), ...(d.input && { input: d.input }) };
      if ("run" in d) logic.push({ ...base, kind: "promise", run: d.run as never, ...(d.output && { output: d.output }) });
      else logic.push({ ...base, kind: "machine", machine: d.machine as never });
    });
  }
  return logic;
}
