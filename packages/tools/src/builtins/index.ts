import type { Definition } from "../definitions.js";
import { httpRequest } from "./httpRequest.js";
import { type LlmSettings, llmComplete } from "./llmComplete.js";
import { summarize } from "./summarize.js";
import { type VisionSettings, visionAgent } from "./visionAgent.js";

export interface BuiltinSettings {
  llm?: LlmSettings;
  vision?: VisionSettings;
}

/** The tools every node carries; each is hosted where the node has its capabilities. */
export function builtinTools(settings: BuiltinSettings = {}): Definition[] {
  return [httpRequest, llmComplete(settings.llm ?? {}), summarize, visionAgent(settings.vision ?? {})];
}

export { httpRequest, llmComplete, summarize, visionAgent };
export type { LlmSettings, VisionSettings };
