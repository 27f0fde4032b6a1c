import { type LogicInfo, ShoalError, describeZodError } from "@shoal/protocol";
import { type Definition, isAgent } from "@shoal/tools";
import { stateChartOf } from "./stateChart.js";

/** A tool (promise actor) or an agent (machine actor), as plugins and built-ins define them. */
export type HostedLogic = Definition;

/** Actor logic by name: what a node can host, and what it tells the mesh it hosts. */
export class LogicRegistry {
  private readonly logic = new Map<string, HostedLogic>();

  register(def: HostedLogic): void {
    if (this.logic.has(def.name)) throw new ShoalError("SHOAL_ERR_BAD_INPUT", `logic "${def.name}" is registered twice`);
    this.logic.set(def.name, def);
  }

  get(name: string): HostedLogic {
    const def = this.logic.get(name);
    if (!def) throw new ShoalError("SHOAL_ERR_UNKNOWN_LOGIC", `no actor logic named "${name}" on this node`);
    return def;
  }

  has(name: string): boolean {
    return this.logic.has(name);
  }

  /** Names of the logic a node with these capabilities can host. */
  hostable(capabilities: string[]): string[] {
    const have = new Set(capabilities);
    return [...this.logic.values()].filter((d) => (d.capabilities ?? []).every((c) => have.has(c))).map((d) => d.name).sort();
  }

  /** What devtools show of a logic: kind, capabilities, and a machine's chart. */
  describe(name: string): LogicInfo {
    const def = this.get(name);
    return { name, kind: isAgent(def) ? "machine" : "promise", capabilities: def.capabilities ?? [], chart: isAgent(def) ? stateChartOf(def.machine) : null };
  }

  /** Checks input against the logic's schema; returns the parsed input. */
  checkInput(def: HostedLogic, input: unknown): unknown {
    if (!def.input) return input;
    const parsed = def.input.safeParse(input);
    if (parsed.success) return parsed.data;
    const { message, path } = describeZodError(parsed.error);
    throw new ShoalError("SHOAL_ERR_BAD_INPUT", `input of ${def.name}: ${message}`, { path: ["input", ...path] });
  }
}
