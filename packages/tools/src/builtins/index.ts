import type { Definition } from "../definitions.js";
import { httpRequest } from "./httpRequest.js";
import { type LlmSettings, llmComplete } from "./llmComplete.js";
import type { HttpSettings } from "./readBoundedBody.js";
import { summarize } from "./summarize.js";
import { type VisionSettings, visionAgent } from "./visionAgent.js";

export interface BuiltinSettings {
  llm?: LlmSettings;
  vision?: VisionSettings;
  /** For the tools that talk HTTP: http_request and llm_complete. */
  http?: HttpSettings;
}

/** The tools every node carries; each is hosted where the node has its capabilities. */
export function builtinTools(settings: BuiltinSettings = {}): Definition[] {
  return [httpRequest(settings.http), llmComplete(settings.llm ?? {}, settings.http), summarize, visionAgent(settings.vision ?? {})];
}

export { httpRequest, llmComplete, summarize, visionAgent };
export type { HttpSettings, LlmSettings, VisionSettings };
