import { z } from "zod";

/**
 * The node's admission limits: what it refuses, and how much of anything it holds for others.
 * Each is a `shoal node` flag and config key of the same name; the README lists the error code
 * each one answers with. Defaults fit a small edge box that serves a mesh of tens of nodes.
 */
export const LIMITS = {
  "handshake-timeout-ms": { min: 100, max: 600_000, default: 5_000, doc: "a peer that has not finished the handshake by then is cut off" },
  "max-handshake-frame-bytes": { min: 1024, max: 16 * 1024 * 1024, default: 64 * 1024, doc: "largest frame read before a peer has finished the handshake (1009)" },
  "max-pending-connections": { min: 1, max: 100_000, default: 256, doc: "connections on /mesh still in the handshake, from all addresses (503)" },
  "max-pending-per-address": { min: 1, max: 100_000, default: 16, doc: "connections on /mesh still in the handshake, from one remote address (503)" },
  "max-body-bytes": { min: 1024, max: 1024 * 1024 * 1024, default: 4 * 1024 * 1024, doc: "largest HTTP request body (413 SHOAL_ERR_BODY_TOO_LARGE)" },
  "max-json-depth": { min: 2, max: 10_000, default: 64, doc: "deepest nesting of a JSON request body (400 SHOAL_ERR_TOO_DEEP)" },
  "max-workflow-instances": { min: 1, max: 10_000_000, default: 5_000, doc: "steps of one workflow, fanned-out instances counted, before anything is stored (400 SHOAL_ERR_TOO_MANY_INSTANCES naming the step)" },
  "max-workflows": { min: 1, max: 10_000_000, default: 1_000, doc: "workflows running at once on this node as their owner (429 SHOAL_ERR_OVERLOADED with Retry-After)" },
  "max-actors": { min: 1, max: 10_000_000, default: 10_000, doc: "actors hosted on this node (spawns refused with SHOAL_ERR_OVERLOADED)" },
  "max-inspectors": { min: 1, max: 100_000, default: 64, doc: "open /v1/inspect subscribers (503 SHOAL_ERR_OVERLOADED)" },
  "max-peer-requests": { min: 1, max: 1_000_000, default: 1_024, doc: "requests from one peer being answered at once (SHOAL_ERR_OVERLOADED to the peer)" },
  "max-members": { min: 2, max: 1_000_000, default: 1_024, doc: "rows of the membership table; records of new members past it are refused (SHOAL_ERR_TABLE_FULL)" },
  "http-max-response-bytes": { min: 1024, max: 1024 * 1024 * 1024, default: 10 * 1024 * 1024, doc: "largest response body http_request reads (the step fails with SHOAL_ERR_RESPONSE_TOO_LARGE)" },
} as const;

export type LimitKey = keyof typeof LIMITS;

/** The zod shape of every limit, for the node's config schema. */
export const limitsShape = Object.fromEntries(
  Object.entries(LIMITS).map(([key, l]) => [key, z.number().int().min(l.min).max(l.max)]),
) as { [K in LimitKey]: z.ZodNumber };

export const LIMIT_DEFAULTS = Object.fromEntries(Object.entries(LIMITS).map(([key, l]) => [key, l.default])) as {
  [K in LimitKey]: (typeof LIMITS)[K]["default"];
};

/** A workflow whose resume crashed its owner this many times ends `failed` with SHOAL_ERR_QUARANTINED. */
export const QUARANTINE_AFTER_CRASHES = 2;
