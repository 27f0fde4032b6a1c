import { connect } from "node:net";
import { type Body, type HttpInput, ROUTES, type RawInput, editedSpec } from "./httpArbs.js";

/**
 * Sends fuzz requests over a raw TCP socket: fetch and node:http refuse to send most of what is
 * worth sending (bad methods, malformed paths, duplicate lengths, lying chunked bodies).
 */

/** HTTP fuzz sockets come from their own loopback address, apart from the mesh's peers. */
export const HTTP_SOURCE = "127.0.0.3";
const ANSWER_TIMEOUT_MS = 10_000;

export interface HttpAnswer {
  /** undefined: no status line came back (the node closed, reset or said nothing in time). */
  status?: number;
  headers: Record<string, string>;
  body: string;
  /** How the exchange ended when it did not end with a full answer. */
  end?: "timeout" | "closed" | "reset";
  /** False when the node ended the exchange before the whole request was written. */
  sentAll: boolean;
  ms: number;
}

/** A URL in a fuzz input that points anywhere but this machine is replaced: nothing may dial out. */
function keepLocal(value: unknown): unknown {
  if (typeof value === "string") return /^[a-z][a-z0-9+.-]*:\/\/(?!(127\.0\.0\.1|localhost)[:/])/i.test(value) ? "http://127.0.0.1:1/" : value;
  if (Array.isArray(value)) return value.map(keepLocal);
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, keepLocal(v)]));
  return value;
}

export function bodyBytes(body: Body): Buffer | undefined {
  switch (body.k) {
    case "none":
      return undefined;
    case "json":
      return Buffer.from(JSON.stringify(keepLocal(body.value)) ?? "null");
    case "text":
      return Buffer.from(body.text);
    case "bytes":
      return Buffer.from(body.bytes);
    case "truncated": {
      const text = JSON.stringify(keepLocal(body.value)) ?? "null";
      return Buffer.from(text.slice(0, body.keep % Math.max(1, text.length)));
    }
    case "deep": {
      const open = body.open === "[" ? "[" : '{"a":';
      const close = body.open === "[" ? "]" : "}";
      return Buffer.from(open.repeat(body.depth) + (body.closed ? `1${close.repeat(body.depth)}` : ""));
    }
    case "huge":
      return Buffer.from(`{"name":"${"x".repeat(Math.max(0, body.bytes - 12))}"}`);
    case "spec":
      return Buffer.from(JSON.stringify(keepLocal(editedSpec(body.edits))));
  }
}

/** The request line's target: the route with its params filled in, and the query. */
export function targetOf(input: HttpInput): string {
  const path = input.route.split(" ")[1]!;
  if (input.unknown) return `/${input.params.join("/")}${input.query}`;
  let i = 0;
  return path.replace(/:[a-z]+/g, () => input.params[i++] ?? "") + input.query;
}

export function methodOf(input: HttpInput): string {
  return input.method ?? input.route.split(" ")[0]!;
}

/** The whole request as bytes, as the fuzz input describes it. */
export function requestBytes(input: HttpInput, host: string): Buffer {
  const body = bodyBytes(input.body);
  const h = input.headers;
  const lines = [`${methodOf(input)} ${targetOf(input)} HTTP/1.1`, `Host: ${host}`, "Connection: close"];
  let payload = body ?? Buffer.alloc(0);
  const length = (n: number) => lines.push(`Content-Length: ${n}`);
  switch (h.k) {
    case "json":
      if (body) lines.push("Content-Type: application/json");
      if (body) length(payload.length);
      break;
    case "none":
      if (body) length(payload.length);
      break;
    case "type":
      lines.push(`Content-Type: ${h.value}`);
      length(payload.length);
      break;
    case "big":
      lines.push(`X-Fuzz: ${"a".repeat(h.bytes)}`, "Content-Type: application/json");
      length(payload.length);
      break;
    case "many":
      for (let i = 0; i < h.count; i++) lines.push(`X-Fuzz-${i}: ${i}`);
      lines.push("Content-Type: application/json");
      length(payload.length);
      break;
    case "dupLength":
      lines.push("Content-Type: application/json");
      length(payload.length);
      length(h.same ? payload.length : payload.length + 1);
      break;
    case "chunked": {
      lines.push("Content-Type: application/json", "Transfer-Encoding: chunked");
      const hex = payload.length.toString(16);
      payload = Buffer.concat([Buffer.from(h.valid ? `${hex}\r\n` : `${hex}zz;\r\n`), payload, Buffer.from(h.valid ? "\r\n0\r\n\r\n" : "\r\n")]);
      break;
    }
    case "te":
      lines.push("Content-Type: application/json", `Transfer-Encoding: ${h.value}`);
      length(payload.length);
      break;
    case "lyingLength":
      lines.push("Content-Type: application/json");
      length(Math.max(0, payload.length + h.delta));
      break;
    case "expect":
      lines.push("Content-Type: application/json", "Expect: 100-continue");
      length(payload.length);
      break;
    case "random":
      for (const [k, v] of h.pairs) lines.push(`${k}: ${v}`);
      if (body) length(payload.length);
      break;
  }
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), payload]);
}

/** Routes that read a request body: elsewhere a node may answer without reading it, and close. */
const TAKES_BODY = new Set(ROUTES.filter((r) => r.startsWith("POST ")));

/**
 * May the node leave this request unanswered? It may wait for bytes a lying length promises,
 * close on a bad chunked body or one over the limit, and drop a body it has no use for.
 */
export function mayGoUnanswered(input: HttpInput, answer?: HttpAnswer): boolean {
  const readsBody = !input.unknown && input.method === undefined && TAKES_BODY.has(input.route);
  return (
    (answer !== undefined && !answer.sentAll && !readsBody) ||
    (input.headers.k === "lyingLength" && input.headers.delta > 0) ||
    (input.headers.k === "chunked" && !input.headers.valid) ||
    (input.body.k === "huge" && input.body.bytes > 4 * 1024 * 1024) ||
    (input.route === "POST /v1/workflows" && /[?&]wait=1/.test(input.query))
  );
}

/** Parses the first answer in `raw` (skipping 1xx); undefined while it is incomplete. */
function parse(raw: Buffer, final: boolean): Omit<HttpAnswer, "ms" | "sentAll"> | undefined {
  let start = 0;
  for (;;) {
    const headEnd = raw.indexOf("\r\n\r\n", start);
    if (headEnd < 0) return undefined;
    const head = raw.subarray(start, headEnd).toString("latin1").split("\r\n");
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? "")?.[1]);
    if (!Number.isFinite(status)) return undefined;
    const headers: Record<string, string> = {};
    for (const line of head.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const rest = raw.subarray(headEnd + 4);
    if (status >= 100 && status < 200) {
      start = headEnd + 4;
      continue;
    }
    if (headers["transfer-encoding"]?.includes("chunked")) {
      const chunks: Buffer[] = [];
      let at = 0;
      for (;;) {
        const lineEnd = rest.indexOf("\r\n", at);
        if (lineEnd < 0) return final ? { status, headers, body: Buffer.concat(chunks).toString() } : undefined;
        const size = Number.parseInt(rest.subarray(at, lineEnd).toString(), 16);
        if (!Number.isFinite(size)) return { status, headers, body: Buffer.concat(chunks).toString() };
        if (size === 0) return { status, headers, body: Buffer.concat(chunks).toString() };
        if (rest.length < lineEnd + 2 + size) return final ? { status, headers, body: Buffer.concat(chunks).toString() } : undefined;
        chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
    }
    const length = headers["content-length"] === undefined ? undefined : Number(headers["content-length"]);
    if (length !== undefined && rest.length >= length) return { status, headers, body: rest.subarray(0, length).toString() };
    return final ? { status, headers, body: rest.toString() } : undefined;
  }
}

/**
 * Writes `bytes` to the port and reads the first answer. Stops writing once an answer has come
 * (a node that refuses a big body does not read the rest of it).
 */
export function exchange(port: number, bytes: Buffer, options: { timeoutMs?: number; closeAfterMs?: number } = {}): Promise<HttpAnswer> {
  const started = Date.now();
  return new Promise((resolveAnswer) => {
    const socket = connect({ host: "127.0.0.1", port, localAddress: HTTP_SOURCE });
    const chunks: Buffer[] = [];
    let done = false;
    let sentAll = false;
    const finish = (end?: HttpAnswer["end"]) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const answer = parse(Buffer.concat(chunks), true);
      resolveAnswer({ ...(answer ?? { headers: {}, body: "" }), ...(answer ? {} : { end: end ?? "closed" }), sentAll, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish("timeout"), options.closeAfterMs ?? options.timeoutMs ?? ANSWER_TIMEOUT_MS);
    socket.on("error", (err: NodeJS.ErrnoException) => finish(err.code === "ECONNRESET" || err.code === "EPIPE" ? "reset" : "closed"));
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      if (parse(Buffer.concat(chunks), false)) finish();
    });
    socket.on("end", () => finish("closed"));
    socket.on("connect", async () => {
      // Big bodies go in pieces, so that an early answer stops the writing.
      for (let at = 0; at < bytes.length && !done; at += 256 * 1024) {
        if (!socket.write(bytes.subarray(at, at + 256 * 1024))) {
          await new Promise<void>((r) => {
            socket.once("drain", r);
            socket.once("close", r);
          });
        }
      }
      sentAll = !done;
    });
  });
}

export function sendHttp(port: number, input: HttpInput): Promise<HttpAnswer> {
  return exchange(port, requestBytes(input, `127.0.0.1:${port}`), mayGoUnanswered(input) ? { timeoutMs: 500 } : {});
}

export function sendRaw(port: number, input: RawInput): Promise<HttpAnswer> {
  const bytes = typeof input.bytes === "string" ? Buffer.from(input.bytes, "latin1") : Buffer.from(input.bytes);
  return exchange(port, bytes, { closeAfterMs: input.closeAfterMs + 100 });
}
