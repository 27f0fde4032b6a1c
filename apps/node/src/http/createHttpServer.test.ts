import { Agent, type Server, request as httpRequest } from "node:http";
import { connect } from "node:net";
import { ApiErrorResponseSchema, ShoalError } from "@shoal/protocol";
import fc from "fast-check";
import type { LightMyRequestResponse } from "fastify";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { TokenVerifier, createToken } from "../auth/apiTokens.js";
import { type HttpServerOptions, LINGER_MAX_BYTES, MAX_HEADER_BYTES, createHttpServer } from "./createHttpServer.js";
import { OriginPolicy } from "./OriginPolicy.js";
import { Router } from "./Router.js";

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

/** A server with a few routes that exercise each path through the error handling; its log lines are kept. */
async function build(options: Partial<HttpServerOptions> = {}, tokens?: TokenVerifier) {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const http = createHttpServer({ logger, maxBodyBytes: 1024, maxJsonDepth: 8, ...options });
  new Router(http.app, tokens)
    .add("POST", "/echo", ({ body }) => ({ json: body(z.object({ n: z.number() })) }))
    .add("POST", "/cancel", ({ body }) => ({ json: { body: body(z.object({}).strict()) } }))
    .add("GET", "/items/:id", ({ params }) => ({ json: { id: params.id } }))
    .add("DELETE", "/items/:id", ({ params }) => ({ json: { deleted: params.id } }))
    .add("GET", "/open", () => ({ json: { ok: true } }), { access: "open" })
    .add("POST", "/admin", () => ({ json: { ok: true } }), { access: "admin" })
    .add("GET", "/bug", () => {
      throw new TypeError("kaboom");
    })
    .add("GET", "/busy", ({ url }) => {
      const ms = url.searchParams.get("ms");
      throw new ShoalError("SHOAL_ERR_OVERLOADED", "busy", ms === null ? {} : { retryAfterMs: Number(ms) });
    })
    .add("GET", "/slow", async ({ url }) => {
      await new Promise((r) => setTimeout(r, Number(url.searchParams.get("ms"))));
      return { json: { waited: true } };
    })
    .seal();
  return { http, lines };
}

async function listening(options: Partial<HttpServerOptions> = {}) {
  const { http } = await build(options);
  await http.start();
  await new Promise<void>((resolve) => http.server.listen(0, "127.0.0.1", resolve));
  servers.push(http.server);
  return (http.server.address() as { port: number }).port;
}

function expectErrorBody(res: LightMyRequestResponse, status: number, code: string) {
  expect({ status: res.statusCode, body: res.body }).toMatchObject({ status });
  expect(res.headers["content-type"]).toMatch(/^application\/json/);
  expect(ApiErrorResponseSchema.parse(res.json()).error.code).toBe(code);
}

const json = { "content-type": "application/json" };

describe("createHttpServer: every refusal is a 4xx with the error body", () => {
  it.each([
    ["a path with bad percent-encoding", { method: "GET", url: "/items/%ZZ" }, 400, "SHOAL_ERR_BAD_URL"],
    ["a path that is not UTF-8", { method: "GET", url: "/items/%E0%A4%A" }, 400, "SHOAL_ERR_BAD_URL"],
    ["bad percent-encoding on no route", { method: "GET", url: "/nowhere/%ZZ" }, 400, "SHOAL_ERR_BAD_URL"],
    ["a body that is not JSON", { method: "POST", url: "/echo", headers: json, payload: "{not json" }, 400, "SHOAL_ERR_BAD_REQUEST"],
    ["a body of the wrong schema", { method: "POST", url: "/echo", headers: json, payload: '{"n":"x"}' }, 400, "SHOAL_ERR_BAD_REQUEST"],
    ["a __proto__ key", { method: "POST", url: "/echo", headers: json, payload: '{"n":1,"__proto__":{"x":1}}' }, 400, "SHOAL_ERR_BAD_REQUEST"],
    ["nesting past the limit", { method: "POST", url: "/echo", headers: json, payload: `${"[".repeat(9)}${"]".repeat(9)}` }, 400, "SHOAL_ERR_TOO_DEEP"],
    ["a thousand unclosed levels", { method: "POST", url: "/echo", headers: json, payload: "[".repeat(1000) }, 400, "SHOAL_ERR_TOO_DEEP"],
    ["a body over the limit", { method: "POST", url: "/echo", headers: json, payload: JSON.stringify({ n: 1, pad: "x".repeat(2000) }) }, 413, "SHOAL_ERR_BODY_TOO_LARGE"],
    ["a text/plain body", { method: "POST", url: "/echo", headers: { "content-type": "text/plain" }, payload: "hi" }, 415, "SHOAL_ERR_UNSUPPORTED_MEDIA_TYPE"],
    ["a form body", { method: "POST", url: "/echo", headers: { "content-type": "application/x-www-form-urlencoded" }, payload: "n=1" }, 415, "SHOAL_ERR_UNSUPPORTED_MEDIA_TYPE"],
    ["a body without a content type", { method: "POST", url: "/echo", payload: '{"n":1}' }, 415, "SHOAL_ERR_UNSUPPORTED_MEDIA_TYPE"],
    ["an unknown route", { method: "GET", url: "/nowhere" }, 404, "SHOAL_ERR_NOT_FOUND"],
    ["a method the route does not take", { method: "PUT", url: "/items/a" }, 405, "SHOAL_ERR_METHOD_NOT_ALLOWED"],
  ] as const)("%s", async (_name, request, status, code) => {
    const { http } = await build();
    expectErrorBody(await http.app.inject(request), status, code);
  });

  it("names the zod path of a body that fails its schema", async () => {
    const { http } = await build();
    const res = await http.app.inject({ method: "POST", url: "/echo", headers: json, payload: '{"n":"x"}' });
    expect(res.json().error).toMatchObject({ code: "SHOAL_ERR_BAD_REQUEST", path: ["n"] });
  });

  it("takes an empty body as no body, with or without a JSON content type", async () => {
    const { http } = await build();
    for (const headers of [{}, json, { "content-type": "application/json; charset=utf-8" }]) {
      const res = await http.app.inject({ method: "POST", url: "/cancel", headers, payload: "" });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ body: {} });
    }
    expect((await http.app.inject({ method: "POST", url: "/echo", headers: json, payload: '{"n":1}' })).json()).toEqual({ n: 1 });
  });

  it("answers a handler's own bug with 500 SHOAL_ERR_INTERNAL, logged once with its stack", async () => {
    const { http, lines } = await build();
    expectErrorBody(await http.app.inject({ method: "GET", url: "/bug" }), 500, "SHOAL_ERR_INTERNAL");
    const logged = lines.filter((l) => l.level === 50);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ msg: "request handler failed", url: "/bug", err: { message: "kaboom", stack: expect.stringContaining("TypeError") } });
  });

  it("answers SHOAL_ERR_OVERLOADED with 429 and Retry-After in whole seconds, rounded up, at least 1", async () => {
    const { http } = await build();
    for (const [ms, seconds] of [["1500", "2"], ["1000", "1"], ["1", "1"], ["0", "1"], [null, "1"]] as const) {
      const res = await http.app.inject({ method: "GET", url: ms === null ? "/busy" : `/busy?ms=${ms}` });
      expectErrorBody(res, 429, "SHOAL_ERR_OVERLOADED");
      expect(res.headers["retry-after"]).toBe(seconds);
    }
  });

  it("never answers 5xx, nor a 4xx without the error body, whatever the path, method and body (over TCP)", async () => {
    const port = await listening();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const segment = fc.oneof(
      fc.stringMatching(/^[\x21-\x7e]{0,12}$/),
      fc.constantFrom("%", "%Z", "%ZZ", "%E0%A4%A", "%C0%AF", "%FF", "%00", "%2F", "..", "items", ":id", "*", "\\"),
    );
    const path = fc.array(segment, { maxLength: 4 }).map((s) => `/${s.join("/")}`);
    const body = fc.oneof(fc.constant(undefined), fc.string(), fc.json(), fc.constant("[".repeat(100)));
    const type = fc.constantFrom(undefined, "application/json", "text/plain", "application/json; charset=latin1", "");
    const method = fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS");
    await fc.assert(
      fc.asyncProperty(method, fc.oneof(path, path.map((p) => `/items${p}`)), body, type, async (m, url, payload, contentType) => {
        const res = await send(agent, port, m, url, contentType === undefined ? {} : { "content-type": contentType }, payload);
        expect(res.status).toBeLessThan(500);
        if (res.status >= 400) {
          expect(res.contentType).toMatch(/^application\/json/);
          expect(ApiErrorResponseSchema.safeParse(JSON.parse(res.body)).success).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
    agent.destroy();
  });
});

/** One request with node:http, which sends the path as given (fetch and inject normalise or refuse some). */
function send(agent: Agent, port: number, method: string, path: string, headers: Record<string, string>, body?: string) {
  return new Promise<{ status: number; contentType: string | undefined; body: string }>((resolve, reject) => {
    // node:http sends a GET or DELETE body unframed unless it has a Content-Length.
    const length = body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) };
    const req = httpRequest({ host: "127.0.0.1", port, method, path, headers: { ...headers, ...length }, agent }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => {
        text += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"], body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("Router", () => {
  it("decodes path parameters", async () => {
    const { http } = await build();
    expect((await http.app.inject({ method: "GET", url: "/items/a%20b%2Fc" })).json()).toEqual({ id: "a b/c" });
    expect((await http.app.inject({ method: "GET", url: `/items/${"x".repeat(500)}` })).json()).toEqual({ id: "x".repeat(500) });
  });

  it("answers other methods, HEAD too, with 405 and Allow naming the ones the path takes", async () => {
    const { http } = await build();
    for (const method of ["POST", "HEAD", "PATCH"] as const) {
      const res = await http.app.inject({ method, url: "/items/a" });
      expect(res.statusCode).toBe(405);
      expect(res.headers.allow).toBe("GET, DELETE");
    }
    const res = await http.app.inject({ method: "POST", url: "/items/a" });
    expect(res.json().error.message).toBe("/items/a does not take POST; it takes GET, DELETE");
  });

  it("checks the token before reading the body, its scope per route, and none on open routes", async () => {
    const key = Buffer.alloc(32, 7);
    const { http } = await build({}, new TokenVerifier(key));
    const bearer = (scope: "read" | "submit" | "admin") => ({ authorization: `Bearer ${createToken(key, scope, 60).token}` });
    const big = JSON.stringify({ n: 1, pad: "x".repeat(5000) });
    expectErrorBody(await http.app.inject({ method: "POST", url: "/echo", headers: json, payload: big }), 401, "SHOAL_ERR_UNAUTHORIZED");
    expectErrorBody(await http.app.inject({ method: "POST", url: "/echo", headers: { ...json, ...bearer("submit") }, payload: big }), 413, "SHOAL_ERR_BODY_TOO_LARGE");
    const otherKey = `Bearer ${createToken(Buffer.alloc(32, 8), "admin", 60).token}`;
    expectErrorBody(await http.app.inject({ method: "GET", url: "/items/a", headers: { authorization: otherKey } }), 401, "SHOAL_ERR_UNAUTHORIZED");
    expect((await http.app.inject({ method: "GET", url: "/items/a", headers: bearer("read") })).statusCode).toBe(200);
    expectErrorBody(await http.app.inject({ method: "DELETE", url: "/items/a", headers: bearer("read") }), 403, "SHOAL_ERR_FORBIDDEN");
    expect((await http.app.inject({ method: "DELETE", url: "/items/a", headers: bearer("submit") })).statusCode).toBe(200);
    expectErrorBody(await http.app.inject({ method: "POST", url: "/admin", headers: bearer("submit") }), 403, "SHOAL_ERR_FORBIDDEN");
    expect((await http.app.inject({ method: "POST", url: "/admin", headers: bearer("admin") })).statusCode).toBe(200);
    expect((await http.app.inject({ method: "GET", url: "/open" })).statusCode).toBe(200);
  });

  it("refuses tokens in URLs, Hosts that do not name the node and other origins, and answers allowed origins' preflights", async () => {
    const origins = new OriginPolicy({ names: ["edge-01", "127.0.0.1"], allowHost: ["edge.example"], allowOrigin: ["https://ops.example"], scheme: "http" });
    const { http } = await build({ origins });
    const get = (headers: Record<string, string>, url = "/items/a") => http.app.inject({ method: "GET", url, headers });
    expect((await get({ host: "127.0.0.1:7400" })).statusCode).toBe(200);
    expect((await get({ host: "localhost:7400" })).statusCode).toBe(200);
    expect((await get({ host: "EDGE-01" })).statusCode).toBe(200);
    expect((await get({ host: "edge.example:443" })).statusCode).toBe(200);
    expectErrorBody(await get({ host: "attacker.example:7400" }), 421, "SHOAL_ERR_BAD_HOST");
    expectErrorBody(await get({ host: "127.0.0.1:7400", origin: "http://attacker.example" }), 403, "SHOAL_ERR_BAD_ORIGIN");
    expectErrorBody(await get({ host: "127.0.0.1:7400", origin: "null" }), 403, "SHOAL_ERR_BAD_ORIGIN");
    expect((await get({ host: "127.0.0.1:7400", origin: "http://127.0.0.1:7400" })).statusCode).toBe(200);
    const allowed = await get({ host: "127.0.0.1:7400", origin: "https://ops.example" });
    expect(allowed.headers["access-control-allow-origin"]).toBe("https://ops.example");
    const preflight = await http.app.inject({ method: "OPTIONS", url: "/echo", headers: { host: "127.0.0.1", origin: "https://ops.example" } });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers["access-control-allow-headers"]).toContain("authorization");
    expectErrorBody(await get({ host: "127.0.0.1" }, "/items/a?token=abc"), 400, "SHOAL_ERR_TOKEN_IN_URL");
    expectErrorBody(await get({ host: "127.0.0.1" }, `/items/${createToken(Buffer.alloc(32), "read", 60).token}`), 400, "SHOAL_ERR_TOKEN_IN_URL");
  });
});

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** When the server closed the connection, ms after the exchange began. */
  closedAfterMs: number;
}

/** Writes `chunks` to a fresh connection (`gapMs` apart) and reads until the server closes it. */
function exchange(port: number, chunks: (string | Buffer)[], gapMs = 0): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const socket = connect(port, "127.0.0.1");
    const received: Buffer[] = [];
    socket.on("data", (d) => received.push(d));
    socket.on("error", () => {});
    socket.on("close", () => {
      const text = Buffer.concat(received).toString("latin1");
      const [head = "", ...rest] = text.split("\r\n\r\n");
      const [statusLine = "", ...headerLines] = head.split("\r\n");
      const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body: rest.join("\r\n\r\n"), closedAfterMs: Date.now() - start });
    });
    (async () => {
      for (const chunk of chunks) {
        if (socket.destroyed) return;
        socket.write(chunk);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    })().catch(reject);
  });
}

function expectRawError(answer: RawAnswer, status: number, code: string) {
  expect(answer.status).toBe(status);
  expect(answer.headers["content-type"]).toMatch(/^application\/json/);
  expect(Number(answer.headers["content-length"])).toBe(Buffer.byteLength(answer.body));
  expect(ApiErrorResponseSchema.parse(JSON.parse(answer.body)).error.code).toBe(code);
}

async function getOpen(port: number) {
  return (await fetch(`http://127.0.0.1:${port}/open`)).json();
}

describe("createHttpServer over real TCP", () => {
  it("answers bytes that are not HTTP with 400 SHOAL_ERR_BAD_HTTP and the error body, then serves on", async () => {
    const port = await listening();
    for (const garbage of ["\x00\x01\x02garbage\r\n\r\n", "GET /open HTTP/9.9\r\n\r\n", "GET /open HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]) {
      expectRawError(await exchange(port, [garbage]), 400, "SHOAL_ERR_BAD_HTTP");
    }
    expect(await getOpen(port)).toEqual({ ok: true });
  });

  it("answers headers over 16 KiB with 431 SHOAL_ERR_HEADERS_TOO_LARGE", async () => {
    const port = await listening();
    const answer = await exchange(port, [`GET /open HTTP/1.1\r\nHost: x\r\nX-Pad: ${"a".repeat(MAX_HEADER_BYTES)}\r\n\r\n`]);
    expectRawError(answer, 431, "SHOAL_ERR_HEADERS_TOO_LARGE");
    expect(await getOpen(port)).toEqual({ ok: true });
  });

  it("cuts a client that sends its headers or its body too slowly with 408 SHOAL_ERR_CLIENT_TIMEOUT", async () => {
    const port = await listening({ timeouts: { headersTimeoutMs: 300, requestTimeoutMs: 600, checkIntervalMs: 50 } });
    const slowHeaders = await exchange(port, ["GET /open HTTP/1.1\r\n", ...Array.from({ length: 20 }, (_, i) => `X-${i}: a\r\n`)], 100);
    expectRawError(slowHeaders, 408, "SHOAL_ERR_CLIENT_TIMEOUT");
    expect(slowHeaders.closedAfterMs).toBeLessThan(1_000);
    const slowBody = await exchange(port, ["POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", ...Array.from({ length: 20 }, () => " ")], 100);
    expectRawError(slowBody, 408, "SHOAL_ERR_CLIENT_TIMEOUT");
    expect(slowBody.closedAfterMs).toBeLessThan(1_500);
    const silent = await exchange(port, []);
    expect(silent.closedAfterMs).toBeLessThan(1_000);
  });

  it("lets an answer take far longer than requestTimeout once the request is in (a ?wait=1 long poll)", async () => {
    const port = await listening({ timeouts: { headersTimeoutMs: 100, requestTimeoutMs: 200, keepAliveTimeoutMs: 100, checkIntervalMs: 20 } });
    const started = Date.now();
    const res = await fetch(`http://127.0.0.1:${port}/slow?ms=1000`);
    expect(await res.json()).toEqual({ waited: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
  });

  it("closes an idle keep-alive connection after keepAliveTimeout", async () => {
    const port = await listening({ timeouts: { keepAliveTimeoutMs: 200 } });
    const answer = await exchange(port, ["GET /open HTTP/1.1\r\nHost: x\r\n\r\n"]);
    expect(answer.status).toBe(200);
    expect(answer.closedAfterMs).toBeGreaterThanOrEqual(150);
    expect(answer.closedAfterMs).toBeLessThan(2_000);
  });

  it("holds requests that arrive before the routes are in, and answers them after", async () => {
    const { http } = await build();
    await new Promise<void>((resolve) => http.server.listen(0, "127.0.0.1", resolve));
    servers.push(http.server);
    const { port } = http.server.address() as { port: number };
    const early = fetch(`http://127.0.0.1:${port}/open`).then((r) => r.json());
    await new Promise((r) => setTimeout(r, 100));
    await http.start();
    expect(await early).toEqual({ ok: true });
  });
});

interface BodyAnswer extends RawAnswer {
  /** The socket error the client saw, if any (EPIPE, ECONNRESET: the server reset the connection). */
  error?: string;
  bytesWritten: number;
}

/**
 * Sends `head` then `bodyBytes` (in 64 KiB writes, as fast as the socket takes them, or forever
 * when `bodyBytes` is infinite) like a client that keeps sending its body after the answer came
 * (as curl and browsers do), and reads nothing for `readAfterMs`: an answer that a reset throws
 * away is then lost for sure instead of by a race.
 */
function sendBody(port: number, head: string, bodyBytes: number, readAfterMs = 0): Promise<BodyAnswer> {
  return new Promise((resolve) => {
    const start = Date.now();
    const socket = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const received: Buffer[] = [];
    let error: string | undefined;
    if (readAfterMs > 0) {
      socket.pause();
      setTimeout(() => socket.resume(), readAfterMs);
    }
    socket.on("data", (d) => received.push(d));
    socket.on("error", (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    socket.on("end", () => {
      if (socket.writableEnded) socket.destroy();
    });
    socket.on("close", () => {
      const text = Buffer.concat(received).toString("latin1");
      const [top = "", ...rest] = text.split("\r\n\r\n");
      const [statusLine = "", ...headerLines] = top.split("\r\n");
      const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body: rest.join("\r\n\r\n"), closedAfterMs: Date.now() - start, error, bytesWritten: socket.bytesWritten });
    });
    socket.on("connect", async () => {
      socket.write(head);
      const chunk = Buffer.alloc(64 * 1024, "x");
      for (let sent = 0; sent < bodyBytes && !socket.destroyed; sent += chunk.length) {
        if (!socket.write(chunk)) {
          await new Promise<void>((r) => {
            const go = () => {
              socket.off("drain", go).off("close", go);
              r();
            };
            socket.on("drain", go).on("close", go);
          });
        }
      }
      if (!socket.destroyed) socket.end();
    });
  });
}

describe("createHttpServer: lingering close", () => {
  const body = 8 * 1024 * 1024;
  const post = (target: string, type: string, length = body) => `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`;

  it.each([
    ["a body that is not JSON (415)", post("/echo", "text/plain"), 415, "SHOAL_ERR_UNSUPPORTED_MEDIA_TYPE"],
    ["a bad URL (400)", post("/items/%ZZ", "application/json"), 400, "SHOAL_ERR_BAD_URL"],
    ["a Content-Length over the limit (413)", post("/echo", "application/json"), 413, "SHOAL_ERR_BODY_TOO_LARGE"],
    ["a request node:http cannot parse (400)", post("/echo", "application/json").replace("Content-Length", "Transfer-Encoding: gzip\r\nContent-Length"), 400, "SHOAL_ERR_BAD_HTTP"],
  ])("keeps reading the rest of %s after the answer, so a client still sending gets the answer, not a reset", async (_, head, status, code) => {
    const port = await listening();
    const answer = await sendBody(port, head, body, 300);
    expect(answer.error).toBeUndefined();
    expectRawError(answer, status, code);
    // The node read and dropped the whole body, then closed once the client had closed its side.
    expect(answer.bytesWritten).toBeGreaterThan(body);
    expect(await getOpen(port)).toEqual({ ok: true });
  });

  it("closes after lingerMs a client that goes on sending slowly, and after 16 MiB one that sends fast", async () => {
    const port = await listening({ timeouts: { lingerMs: 400 } });
    const slow = new Promise<BodyAnswer>((resolve) => {
      const start = Date.now();
      const socket = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
      const received: Buffer[] = [];
      socket.on("data", (d) => received.push(d));
      socket.on("error", () => {});
      const drip = setInterval(() => socket.write("x"), 20);
      socket.on("close", () => {
        clearInterval(drip);
        const text = Buffer.concat(received).toString("latin1");
        resolve({ status: Number(text.split(" ")[1]), headers: {}, body: text, closedAfterMs: Date.now() - start, bytesWritten: socket.bytesWritten });
      });
      socket.write(post("/echo", "text/plain", 1_000_000));
    });
    const slowAnswer = await slow;
    expect(slowAnswer.status).toBe(415);
    expect(slowAnswer.closedAfterMs).toBeGreaterThanOrEqual(400);
    expect(slowAnswer.closedAfterMs).toBeLessThan(2_000);

    const patient = await listening({ timeouts: { lingerMs: 20_000 } });
    const fast = await sendBody(patient, post("/echo", "text/plain", 1e12), Number.POSITIVE_INFINITY);
    expect(fast.status).toBe(415);
    expect(fast.closedAfterMs).toBeLessThan(10_000);
    // Closed by the byte cap, long before lingerMs, and not before the cap was read (the count is
    // looked at every 50 ms, so a fast client gets a few more MiB in than the cap).
    expect(fast.bytesWritten).toBeGreaterThan(LINGER_MAX_BYTES);
  });
});
