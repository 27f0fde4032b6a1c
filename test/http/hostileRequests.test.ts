
import { connect } from "node:net";
import { resolve } from "node:path";
import { ApiErrorResponseSchema } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { NodeProcess, freePort, stopAll, until } from "../support/shoalProcess.js";

const PLUGIN = resolve(import.meta.dirname, "../fixtures/plugins/actors.mjs");
const started: NodeProcess[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await stopAll(started.splice(0));
});

async function node(extra: string[] = []) {
  const n = new NodeProcess({ name: "hostile", port: await freePort(), extra: ["--plugin", PLUGIN, ...extra] }).start();
  started.push(n);
  return n.ready();
}

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends bytes exactly as given (no client normalises them) and reads the first answer. */
function raw(n: NodeProcess, bytes: string | Buffer): Promise<RawAnswer> {
  return new Promise((resolveAnswer, reject) => {
    const socket = connect(n.port, "127.0.0.1", () => socket.write(bytes));
    let text = "";
    const done = () => {
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return false;
      const [statusLine = "", ...lines] = text.slice(0, end).split("\r\n");
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      const body = text.slice(end + 4);
      if (Buffer.byteLength(body) < Number(headers["content-length"] ?? 0)) return false;
      socket.destroy();
      resolveAnswer({ status: Number(statusLine.split(" ")[1]), headers, body });
      return true;
    };
    socket.setEncoding("latin1");
    socket.on("data", (d) => {
      text += d;
      done();
    });
    // A server may reset a connection it refused while bytes were still coming: the answer counts if it arrived.
    socket.on("error", () => {});
    socket.on("close", () => done() || reject(new Error(`closed without an answer: ${JSON.stringify(text.slice(0, 200))}`)));
  });
}

const request = (method: string, path: string, headers: Record<string, string> = {}, body = "") =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}${body ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : ""}\r\n${body}`;

const upgrade = (path: string, headers: Record<string, string> = { "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13" }) =>
  request("GET", path, { Upgrade: "websocket", Connection: "Upgrade", ...headers });

function expectErrorBody(answer: RawAnswer, status: number, code: string) {
  expect({ status: answer.status, body: answer.body }).toMatchObject({ status });
  expect(answer.headers["content-type"]).toMatch(/^application\/json/);
  expect(ApiErrorResponseSchema.parse(JSON.parse(answer.body)).error.code).toBe(code);
}

const json = { "Content-Type": "application/json" };
const deep = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;

describe("hostile HTTP against a real node process", () => {
  it("answers malformed URIs, bodies and bytes with a 4xx and the error body, and keeps serving", async () => {
    const n = await node(["--max-body-bytes", "65536", "--max-json-depth", "16"]);
    const cases: [string | Buffer, number, string][] = [
      [request("GET", "/v1/workflows/%ZZ"), 400, "SHOAL_ERR_BAD_URL"],
      [request("GET", "/v1/workflows/%E0%A4%A"), 400, "SHOAL_ERR_BAD_URL"],
      [request("GET", "/v1/actors/%ZZ/x"), 400, "SHOAL_ERR_BAD_URL"],
      [request("POST", "/v1/workflows", json, deep(17)), 400, "SHOAL_ERR_TOO_DEEP"],
      [request("POST", "/v1/workflows", json, "[".repeat(60_000)), 400, "SHOAL_ERR_TOO_DEEP"],
      [request("POST", "/v1/workflows", json, `{"name":"x","steps":${deep(15)}}`), 400, "SHOAL_ERR_BAD_SPEC"],
      [request("POST", "/v1/workflows", json, "{not json"), 400, "SHOAL_ERR_BAD_REQUEST"],
      [request("POST", "/v1/workflows", { "Content-Type": "text/plain" }, '{"name":"x"}'), 415, "SHOAL_ERR_UNSUPPORTED_MEDIA_TYPE"],
      [request("POST", "/v1/workflows", {}, '{"name":"x"}'), 415, "SHOAL_ERR_UNSUPPORTED_MEDIA_TYPE"],
      [request("POST", "/v1/workflows", json, JSON.stringify({ name: "x".repeat(70_000) })), 413, "SHOAL_ERR_BODY_TOO_LARGE"],
      [request("POST", "/v1/workflows", { ...json, "Content-Length": String(2 ** 40) }), 413, "SHOAL_ERR_BODY_TOO_LARGE"],
      [request("POST", "/v1/actors", json, '{"logic":7}'), 400, "SHOAL_ERR_BAD_REQUEST"],
      [request("POST", "/v1/nodes"), 405, "SHOAL_ERR_METHOD_NOT_ALLOWED"],
      [request("GET", "/v1/nope"), 404, "SHOAL_ERR_NOT_FOUND"],
      ["\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not HTTP at all\r\n\r\n", 400, "SHOAL_ERR_BAD_HTTP"],
      ["GET /healthz HTTP/1.1\r\nHost: x\r\nNo-Colon-Here\r\n\r\n", 400, "SHOAL_ERR_BAD_HTTP"],
      [request("GET", "/healthz", { "X-Pad": "a".repeat(20_000) }), 431, "SHOAL_ERR_HEADERS_TOO_LARGE"],
      [upgrade("/elsewhere"), 404, "SHOAL_ERR_NOT_FOUND"],
      [upgrade("/v1/inspect", { "Sec-WebSocket-Version": "13" }), 400, "SHOAL_ERR_BAD_REQUEST"],
      [upgrade("/v1/inspect?colour=blue"), 400, "SHOAL_ERR_BAD_REQUEST"],
    ];
    for (const [bytes, status, code] of cases) {
      const answer = await raw(n, bytes);
      expectErrorBody(answer, status, code);
    }
    const health = await n.get("/healthz");
    expect(health.json).toEqual({ ok: true, node: "hostile" });
    expect(n.logsMatching((l) => l.level === 50 || l.msg === "request handler failed")).toEqual([]);
  });

  it("survives clients that reset the connection while it answers them: upgrades refused, requests refused", async () => {
    const n = await node();
    let exited = false;
    void n.exit().then(() => {
      exited = true;
    });
    const bytes = [upgrade("/v1/inspect?colour=blue"), upgrade("/elsewhere"), upgrade("/v1/inspect", {}), request("GET", "/v1/workflows/%ZZ"), "\x00garbage\r\n\r\n"];
    for (let i = 0; i < 300; i++) {
      await new Promise<void>((resolveReset) => {
        const socket = connect(n.port, "127.0.0.1", () => {
          socket.write(bytes[i % bytes.length] as string);
          // An RST right behind the request: the node's answer meets a dead socket.
          setImmediate(() => {
            socket.resetAndDestroy();
            resolveReset();
          });
        });
        socket.on("error", () => resolveReset());
      });
    }
    expect((await n.get("/healthz")).json.ok).toBe(true);
    expect(exited).toBe(false);
  });

  it("caps /v1/inspect at --max-inspectors with 503 SHOAL_ERR_OVERLOADED and closes a hostile inspector alone", async () => {
    const n = await node(["--max-inspectors", "3"]);
    const open = async () => {
      const ws = new WebSocket(`ws://${n.address}/v1/inspect`);
      sockets.push(ws);
      const events: unknown[] = [];
      ws.on("message", (d) => events.push(...(JSON.parse(String(d)) as unknown[])));
      const closed = new Promise<number>((r) => ws.on("close", (code) => r(code)));
      ws.on("error", () => {});
      await new Promise((r, j) => ws.once("open", r).once("unexpected-response", () => j(new Error("refused"))));
      return { ws, events, closed };
    };
    const quiet = await open();
    const big = await open();
    const chatty = await open();
    const refused = await raw(n, upgrade("/v1/inspect"));
    expectErrorBody(refused, 503, "SHOAL_ERR_OVERLOADED");
    expect(refused.headers["retry-after"]).toBe("5");

    big.ws.send(Buffer.alloc(100 * 1024));
    for (let i = 0; i < 1_000; i++) chatty.ws.send(`flood ${i}`);
    expect(await big.closed).toBe(1009);
    expect(await chatty.closed).toBe(1008);

    // The quiet one still streams, and the slots of the closed ones are free again.
    const spawned = await n.request("POST", "/v1/actors", { logic: "counter" });
    expect(spawned.status).toBe(201);
    await until(() => quiet.events.some((e) => (e as { kind: string }).kind === "actor"), 5_000);
    const again = await open();
    await until(() => again.events.length > 0, 5_000);
    expect((await n.get("/healthz")).json.ok).toBe(true);
  });
});
