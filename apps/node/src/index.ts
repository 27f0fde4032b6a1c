export { startNode } from "./startNode.js";
export type { RunningNode, StartNodeOptions } from "./startNode.js";
export { resolveNodeConfig, readConfigFile } from "./config.js";
export type { NodeFlags } from "./config.js";
export { NodeErrors, allErrors } from "./errors.js";
export type { NodeErrorCode } from "./errors.js";
