import { readFileSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import fc from "fast-check";
import { LOGIC_NAMES } from "./frameArbs.js";

/**
 * Inputs for the HTTP API, as fast-check arbitraries. Like the frame inputs, big bodies stay
 * recipes (`deep`, `huge`) until `httpRequest.ts` builds the bytes.
 */

/** Every route of the HTTP API tables in README.md and apps/node/README.md, plus the WebSocket paths. */
export const ROUTES = [
  "GET /healthz", "GET /v1/nodes", "GET /metrics", "GET /v1/actors", "POST /v1/actors", "GET /v1/actors/:id",
  "POST /v1/actors/:id/events", "POST /v1/actors/:id/ask", "DELETE /v1/actors/:id", "POST /v1/workflows",
  "GET /v1/workflows", "GET /v1/workflows/:id", "GET /v1/workflows/:id/result", "POST /v1/workflows/:id/cancel",
  "GET /v1/logic/:name", "GET /devtools", "GET /devtools/assets/:file", "GET /v1/tools", "POST /v1/tasks", "POST /mcp",
  "GET /v1/inspect", "GET /mesh",
] as const;

const EXAMPLE_SPEC = JSON.parse(readFileSync(resolvePath(import.meta.dirname, "../../examples/analyze-cameras.json"), "utf8")) as Record<string, unknown>;

export type Body =
  | { k: "none" }
  | { k: "json"; value: unknown }
  | { k: "text"; text: string }
  | { k: "bytes"; bytes: number[] }
  | { k: "truncated"; value: unknown; keep: number }
  /** `depth` levels of `[` (or `{"a":`), closed or left open. */
  | { k: "deep"; depth: number; open: "[" | "{"; closed: boolean }
  /** A JSON string of about `bytes` bytes. */
  | { k: "huge"; bytes: number }
  /** The example spec with these edits. */
  | { k: "spec"; edits: SpecEdit[] };

export type SpecEdit =
  | { op: "set"; path: (string | number)[]; value: unknown }
  | { op: "delete"; path: (string | number)[] }
  | { op: "copySteps"; times: number }
  | { op: "items"; count: number };

export type Headers =
  | { k: "json" }
  | { k: "none" }
  | { k: "type"; value: string }
  | { k: "big"; bytes: number }
  | { k: "many"; count: number }
  | { k: "dupLength"; same: boolean }
  | { k: "chunked"; valid: boolean }
  | { k: "te"; value: string }
  | { k: "lyingLength"; delta: number }
  | { k: "expect" }
  | { k: "random"; pairs: [string, string][] };

export interface HttpInput {
  node: number;
  route: (typeof ROUTES)[number];
  /** undefined: the route's own method. */
  method?: string;
  /** The path is `params` joined, no route of the API (the `route` field is then unused). */
  unknown?: true;
  /** One value for each `:param` of the route, already as sent on the wire (may be malformed). */
  params: string[];
  query: string;
  headers: Headers;
  body: Body;
}

export type RawInput = { node: number; bytes: number[] | string; closeAfterMs: number };

/** Path segments as sent on the wire: plausible ids, bad percent-encoding, overlong UTF-8, NUL, dots, long ones. */
export const segment = fc.oneof(
  { weight: 3, arbitrary: fc.oneof(fc.stringMatching(/^wf_[a-z0-9]{6,12}$/), fc.uuid(), fc.constantFrom(...LOGIC_NAMES, "index.js", "app.css")) },
  { weight: 4, arbitrary: fc.constantFrom("%ZZ", "%E0%A4%A", "%C0%AF", "%C0%80", "%ED%A0%80", "%F4%90%80%80", "%00", "%", "%%", "%FF", "%2F", "%u0041", "..", ".", "%2e%2e", "a%00b", "%E2%82") },
  { weight: 2, arbitrary: fc.string({ maxLength: 20 }).map(encodeURIComponent) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 8 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 20_000 }).map((n) => "a".repeat(n)) },
);

const query = fc.oneof(
  { weight: 4, arbitrary: fc.constant("") },
  { weight: 2, arbitrary: fc.constantFrom("?wait=1", "?scope=mesh", "?scope=%ZZ", "?wait=%E0%A4%A", "?token=x", "?workflow=%00", "?a=1&a=2&a=3", "?=&&=", "?%", `?${"q=1&".repeat(2_000)}`) },
  { weight: 1, arbitrary: fc.array(fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })), { maxLength: 4 }).map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join("&")}`) },
);

const headers: fc.Arbitrary<Headers> = fc.oneof(
  { weight: 12, arbitrary: fc.constant({ k: "json" as const }) },
  { weight: 2, arbitrary: fc.constant({ k: "none" as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("type" as const),
      value: fc.oneof(
        fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1", "application/json, text/html", "application/", "*/*", "", "application/json; charset=utf-16"),
        fc.string({ maxLength: 30 }).filter((s) => !/[\r\n]/.test(s)),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("big" as const), bytes: fc.constantFrom(8_000, 16_000, 17_000, 64_000, 200_000) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("many" as const), count: fc.constantFrom(100, 2_000, 5_000) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("dupLength" as const), same: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("chunked" as const), valid: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("te" as const), value: fc.constantFrom("gzip", "chunked, gzip", "identity", "chunked\u0000", "xchunked", "chunked, chunked") }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("lyingLength" as const), delta: fc.oneof(fc.integer({ min: -50, max: -1 }), fc.integer({ min: 1, max: 50 })) }) },
  { weight: 1, arbitrary: fc.constant({ k: "expect" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("random" as const),
      pairs: fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,16}$/), fc.string({ unit: "binary-ascii", maxLength: 40 }).filter((s) => !/[\r\n]/.test(s))), { maxLength: 4 }),
    }),
  },
);

const shortText = fc.string({ maxLength: 24 });
const jsonish = fc.jsonValue({ maxDepth: 4 });
const placement = fc.record({ capabilities: fc.array(shortText, { maxLength: 3 }), node: shortText, prefer: fc.oneof(shortText, fc.array(shortText)) }, { requiredKeys: [] });
const event = fc.oneof(fc.record({ type: shortText }), jsonish);

/** JSON close to each route's schema, with every field sometimes of the wrong type. */
const schemaBody: Record<string, fc.Arbitrary<unknown>> = {
  "POST /v1/actors": fc.record({ logic: fc.oneof(fc.constantFrom(...LOGIC_NAMES), jsonish), input: jsonish, placement: fc.oneof(placement, jsonish) }, { requiredKeys: ["logic"] }),
  "POST /v1/actors/:id/events": fc.record({ event, extra: jsonish }, { requiredKeys: [] }),
  "POST /v1/actors/:id/ask": fc.record({ event, timeout_ms: fc.oneof(fc.integer({ min: -10, max: 2_000 }), fc.double(), jsonish) }, { requiredKeys: [] }),
  "POST /v1/tasks": fc.record({ task: fc.oneof(shortText, jsonish), context: jsonish, plan_only: fc.oneof(fc.constant(true), jsonish), planner: fc.oneof(fc.constantFrom("auto", "recipe", "llm"), jsonish) }, { requiredKeys: [] }),
  "POST /mcp": fc.record({
    jsonrpc: fc.oneof(fc.constant("2.0"), jsonish),
    id: fc.oneof(fc.nat(), shortText, fc.constant(null)),
    method: fc.oneof(fc.constantFrom("initialize", "tools/list", "tools/call", "resources/list", "ping", "notifications/initialized"), shortText),
    params: fc.oneof(fc.record({ name: fc.oneof(fc.constantFrom(...LOGIC_NAMES), shortText), arguments: jsonish }), jsonish),
  }, { requiredKeys: [] }),
};

const specPath = fc.oneof(
  fc.constantFrom<(string | number)[]>(["name"], ["deadline_ms"], ["max_parallel"], ["steps"], ["steps", 0], ["steps", 0, "id"], ["steps", 0, "tool"], ["steps", 0, "for_each"], ["steps", 0, "input"], ["steps", 0, "retries"], ["steps", 0, "timeout_ms"], ["steps", 1, "needs"], ["steps", 1, "needs", 0], ["steps", 1, "input", "context", "$from"], ["steps", 1, "on_missing"], ["notify"]),
  fc.array(fc.oneof(shortText, fc.nat(3)), { minLength: 1, maxLength: 4 }),
);
const specValue = fc.oneof(jsonish, fc.constantFrom("summarize", "analyze", "analyze.x", "", 0, -1, 2 ** 53, 1e308, null, [], {}, ["analyze", "analyze"], ["summarize"], { items: [1, 2, 3] }, { nodes: {} }));
const specEdit: fc.Arbitrary<SpecEdit> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("set" as const), path: specPath, value: specValue }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("delete" as const), path: specPath }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("copySteps" as const), times: fc.integer({ min: 1, max: 30 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("items" as const), count: fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 0, max: 100 }) }, { weight: 1, arbitrary: fc.constantFrom(5_000, 10_000, 10_001) }) }) },
);

const deep: fc.Arbitrary<Body> = fc.record({
  k: fc.constant("deep" as const),
  depth: fc.oneof(fc.constantFrom(10_000, 65, 64, 63, 100_000), fc.integer({ min: 2, max: 300 }), fc.integer({ min: 300, max: 200_000 })),
  open: fc.constantFrom("[" as const, "{" as const),
  closed: fc.boolean(),
});

const body = (route: string): fc.Arbitrary<Body> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constant({ k: "none" as const }) },
    { weight: 4, arbitrary: jsonish.map((value) => ({ k: "json" as const, value })) },
    ...(schemaBody[route] ? [{ weight: 8, arbitrary: schemaBody[route].map((value) => ({ k: "json" as const, value })) }] : []),
    ...(route === "POST /v1/workflows" ? [{ weight: 12, arbitrary: fc.array(specEdit, { minLength: 0, maxLength: 4 }).map((edits) => ({ k: "spec" as const, edits })) }] : []),
    { weight: 2, arbitrary: fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom("{", "[1,2", "nul", "\u0000", "{\"a\":}", "'x'", "NaN", "1e999999", "\"\\ud800\"", "{\"__proto__\":{\"x\":1}}", "{\"constructor\":{\"prototype\":{}}}")).map((text) => ({ k: "text" as const, text })) },
    { weight: 1, arbitrary: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 64 }).map((bytes) => ({ k: "bytes" as const, bytes })) },
    { weight: 2, arbitrary: fc.tuple(fc.oneof(jsonish, schemaBody[route] ?? jsonish), fc.nat()).map(([value, keep]) => ({ k: "truncated" as const, value, keep })) },
    { weight: 1, arbitrary: deep },
    { weight: 1, arbitrary: fc.record({ k: fc.constant("huge" as const), bytes: fc.constantFrom(4 * 1024 * 1024 - 200, 4 * 1024 * 1024 + 1, 5 * 1024 * 1024, 6 * 1024 * 1024) }) },
  );

const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "get", "G ET", "POST\u0000"];

export const httpInput: fc.Arbitrary<HttpInput> = fc.constantFrom(...ROUTES).chain((route) =>
  fc.record({
    node: fc.integer({ min: 0, max: 2 }),
    route: fc.constant(route),
    method: fc.option(fc.constantFrom(...METHODS), { freq: 4, nil: undefined }),
    params: fc.array(segment, { minLength: (route.match(/:/g) ?? []).length, maxLength: (route.match(/:/g) ?? []).length }),
    query,
    headers,
    body: body(route),
  }),
);

/** Any path at all, for the router's not-found answer. */
export const unknownRouteInput: fc.Arbitrary<HttpInput> = fc.record({
  node: fc.integer({ min: 0, max: 2 }),
  unknown: fc.constant(true as const),
  route: fc.constant("GET /healthz" as const),
  method: fc.constantFrom(...METHODS),
  params: fc.array(fc.oneof(segment, fc.constantFrom("v1", "v2", "workflows", "actors", "", "healthz")), { minLength: 1, maxLength: 6 }),
  query,
  headers,
  body: body("unknown"),
});

/** Bytes that are not quite HTTP, written to the port as they are. */
export const rawInput: fc.Arbitrary<RawInput> = fc.record({
  node: fc.integer({ min: 0, max: 2 }),
  bytes: fc.oneof(
    fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 300 }),
    fc.constantFrom(
      "GET / HTTP/1.1\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: x\r\n",
      "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
      "GET /healthz\r\n\r\n",
      "\r\n\r\n\r\n",
      "GET /v1/nodes HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
      "POST /v1/workflows HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{",
      "POST /v1/workflows HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "GET /mesh HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
      "GET /mesh HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 99\r\n\r\n",
      "GET /v1/inspect?token=%ZZ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      "GET /%ZZ HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
      "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n",
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
      "\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000\u00a1\u0003\u0003",
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHo st: x\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: x\r\n folded: header\r\n\r\n",
      "GET /healthz HTTP/1.1\nHost: x\n\n",
      "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
  ),
  closeAfterMs: fc.constantFrom(0, 50, 300),
});

/** The example spec with `edits` applied (paths that do not exist are created). */
export function editedSpec(edits: SpecEdit[]): unknown {
  const spec = structuredClone(EXAMPLE_SPEC) as Record<string, unknown>;
  for (const e of edits) {
    const steps = spec.steps;
    if (e.op === "copySteps" && Array.isArray(steps)) {
      const first = steps[0] as Record<string, unknown> | undefined;
      for (let i = 0; i < e.times; i++) steps.push({ ...first, id: `copy${i}`, needs: undefined });
    } else if (e.op === "items" && Array.isArray(steps)) {
      for (const step of steps) if (step && typeof step === "object") (step as Record<string, unknown>).for_each = { items: Array.from({ length: e.count }, (_, i) => i) };
    } else if (e.op === "set" || e.op === "delete") {
      let at: unknown = spec;
      for (const key of e.path.slice(0, -1)) {
        if (at === null || typeof at !== "object") break;
        const next = (at as Record<string | number, unknown>)[key];
        if (next === null || typeof next !== "object") (at as Record<string | number, unknown>)[key] = {};
        at = (at as Record<string | number, unknown>)[key];
      }
      const last = e.path[e.path.length - 1];
      if (at === null || typeof at !== "object" || last === undefined) continue;
      if (e.op === "set") (at as Record<string | number, unknown>)[last] = e.value;
      else delete (at as Record<string | number, unknown>)[last];
    }
  }
  return spec;
}
