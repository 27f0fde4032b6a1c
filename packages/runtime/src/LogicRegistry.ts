import { type Logger, ShoalError, describeZodError } from "@shoal/protocol";
import type { AnyStateMachine } from "xstate";
import type { z } from "zod";

/** What a promise (tool) actor gets besides its input. */
export interface RunContext {
  /** Name of the node it runs on. */
  node: string;
  actorId: string;
  /** The same on every retry and migration: use it to make side effects idempotent. */
  key: string;
  /** 1 on the first run; migrations do not count. */
  attempt: number;
  /** True when this run replaces one lost with its node. */
  migration: boolean;
  /** Fired when the actor is stopped (timeout, cancel, drain). */
  signal: AbortSignal;
  /** Set when the actor runs a workflow step. */
  workflowId?: string;
  stepId?: string;
  log: Logger;
}

interface LogicBase {
  name: string;
  /** The node must have all of these to host it. */
  capabilities?: string[];
  input?: z.ZodType;
}

export interface MachineLogic extends LogicBase {
  kind: "machine";
  machine: AnyStateMachine;
}

export interface PromiseLogic extends LogicBase {
  kind: "promise";
  output?: z.ZodType;
  run(input: unknown, ctx: RunContext): unknown | Promise<unknown>;
}

export type HostedLogic = MachineLogic | PromiseLogic;

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

  /** Checks input against the logic's schema; returns the parsed input. */
  checkInput(def: HostedLogic, input: unknown): unknown {
    if (!def.input) return input;
    const parsed = def.input.safeParse(input);
    if (parsed.success) return parsed.data;
    const { message, path } = describeZodError(parsed.error);
    throw new ShoalError("SHOAL_ERR_BAD_INPUT", `input of ${def.name}: ${message}`, { path: ["input", ...path] });
  }
}
