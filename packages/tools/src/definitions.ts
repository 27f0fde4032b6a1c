import type { Logger } from "@shoal/protocol";
import type { AnyStateMachine } from "xstate";
import type { z } from "zod";

/** What a tool gets besides its input. */
export interface ToolContext {
  /** Name of the node it runs on. */
  node: string;
  actorId: string;
  /** `workflow_id/step_id` for workflow steps: the same on every retry and migration. */
  key: string;
  /** 1 on the first run; moves to another node do not count. */
  attempt: number;
  /** True when this run replaces one lost with its node. */
  migration: boolean;
  /** Fired on timeout, deadline, cancel or drain: stop work and return. */
  signal: AbortSignal;
  log: Logger;
  workflowId?: string;
  stepId?: string;
}

/** A tool: a function actor, input -> output, run on a node that has its capabilities. */
export interface ToolDefinition<I = unknown, O = unknown> {
  /** Unique in the mesh per meaning. */
  name: string;
  /** The node must have all of these to host it. */
  capabilities?: string[];
  /** Checked on every call when present. */
  input?: z.ZodType<I>;
  output?: z.ZodType<O>;
  run(input: I, ctx: ToolContext): O | Promise<O>;
}

/** An agent: an XState machine actor that may live long and checkpoint; its final output is the step's output. */
export interface AgentDefinition {
  name: string;
  capabilities?: string[];
  input?: z.ZodType;
  machine: AnyStateMachine;
}

// biome-ignore lint/suspicious/noExplicitAny: a registry holds tools of every input type, and `run`'s parameter is contravariant
export type Definition = ToolDefinition<any, any> | AgentDefinition;

/** Types a tool definition; adds nothing at run time, so a plain object works the same. */
export function defineTool<I, O>(def: ToolDefinition<I, O>): ToolDefinition<I, O> {
  return def;
}

/** Types an agent definition; adds nothing at run time. */
export function defineAgent(def: AgentDefinition): AgentDefinition {
  return def;
}

export function isAgent(def: Definition): def is AgentDefinition {
  return "machine" in def;
}
