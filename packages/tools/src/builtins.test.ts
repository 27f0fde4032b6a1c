import { mkdtempSync, writeFileSync } from "node:fs";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { silentLogger } from "@shoal/protocol";
import jpeg from "jpeg-js";
import { afterEach, describe, expect, it } from "vitest";
import { EgressGuard } from "./EgressGuard.js";
import { httpRequest, llmComplete, summarize, visionAgent } from "./builtins/index.js";
import { writeSampleFrames } from "./builtins/sampleFrames.js";
import type { ToolContext } from "./definitions.js";

const ctx = (over: Partial<ToolContext> = {}): ToolContext => ({
  node: "cam-1",
  actorId: "a~1",
  key: "wf_1/analyze[0]",
  attempt: 1,
  migration: false,
  signal: new AbortController().signal,
  log: silentLogger,
  ...over,
});
/** The test servers listen on this box's loopback, which the egress rules refuse by default. */
const local = { egress: new EgressGuard({ allow: ["loopback"] }) };
const dir = () => mkdtempSync(join(tmpdir(), "frames-"));
const servers: Server[] = [];
async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

describe("vision_agent", () => {
  it("computes brightness and motion of generated frames exactly", async () => {
    const d = dir();
    const expected = writeSampleFrames(d, { count: 4, background: 100, square: 220, side: 16 });
    const tool = visionAgent({ cameraDir: d });
    const out = await tool.run({ frames: 4 }, ctx());
    expect(out.frames).toBe(4);
    expect(out.brightness).toBeCloseTo(expected.brightness, 3);
    expect(out.motion).toBeCloseTo(expected.motion, 3);
    expect(out.verdict).toBe("motion");
    expect(out.camera).toBe("cam-1");
  });

  it("says normal for a still scene and dark for a dark one, reading only the newest frames", async () => {
    const still = dir();
    writeSampleFrames(still, { count: 3, background: 120, side: 0 });
    expect(await visionAgent({ cameraDir: still }).run({ frames: 3 }, ctx())).toMatchObject({ motion: 0, verdict: "normal", brightness: expect.closeTo(120 / 255, 3) });
    const dark = dir();
    writeSampleFrames(dark, { count: 5, background: 10, side: 0 });
    expect(await visionAgent({ cameraDir: dark }).run({ frames: 2 }, ctx())).toMatchObject({ frames: 2, verdict: "dark" });
  });

  it("reads JPEG frames", async () => {
    const d = dir();
    const data = Buffer.alloc(32 * 32 * 4, 200);
    writeFileSync(join(d, "shot.jpg"), jpeg.encode({ data, width: 32, height: 32 }, 95).data);
    const out = await visionAgent({ cameraDir: d }).run({ frames: 1 }, ctx());
    expect(out.brightness).toBeCloseTo(200 / 255, 1);
  });

  it("fails clearly without a camera folder, without frames, and on a broken frame", async () => {
    await expect(visionAgent({}).run({ frames: 1 }, ctx())).rejects.toMatchObject({ code: "SHOAL_ERR_TOOL_NOT_CONFIGURED" });
    await expect(visionAgent({ cameraDir: dir() }).run({ frames: 1 }, ctx())).rejects.toMatchObject({ code: "SHOAL_ERR_NO_FRAMES" });
    const d = dir();
    writeFileSync(join(d, "bad.png"), "not a png");
    await expect(visionAgent({ cameraDir: d }).run({ frames: 1 }, ctx())).rejects.toMatchObject({ code: "SHOAL_ERR_BAD_IMAGE", message: /bad\.png/ });
  });
});

describe("llm_complete", () => {
  it("asks an OpenAI-compatible chat-completions endpoint and returns the text", async () => {
    let seen: { url?: string; body?: any; auth?: string } = {};
    const url = await serve((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        seen = { url: req.url, body: JSON.parse(body), auth: req.headers.authorization };
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ model: "tiny", choices: [{ message: { role: "assistant", content: "All clear." }, finish_reason: "stop" }], usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } }));
      });
    });
    const tool = llmComplete({ url: `${url}/v1`, model: "tiny", apiKey: "k" });
    const out = await tool.run({ prompt: "Summarize", context: [{ camera: "c1" }], timeout_ms: 5_000 }, ctx());
    expect(out).toEqual({ text: "All clear.", model: "tiny", finish_reason: "stop", usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } });
    expect(seen.url).toBe("/v1/chat/completions");
    expect(seen.auth).toBe("Bearer k");
    expect(seen.body.model).toBe("tiny");
    expect(seen.body.messages[0].content).toContain('"camera": "c1"');
  });

  it("fails clearly when no endpoint is configured, the server errs, or it speaks another format", async () => {
    await expect(llmComplete({}).run({ prompt: "x", timeout_ms: 1000 }, ctx())).rejects.toMatchObject({ code: "SHOAL_ERR_TOOL_NOT_CONFIGURED", message: /SHOAL_LLM_URL/ });
    const failing = await serve((_req, res) => res.writeHead(500).end("overloaded"));
    await expect(llmComplete({ url: failing }).run({ prompt: "x", timeout_ms: 1000 }, ctx())).rejects.toMatchObject({ code: "SHOAL_ERR_HTTP_FAILED", message: /500/ });
    const odd = await serve((_req, res) => res.writeHead(200).end("{}"));
    await expect(llmComplete({ url: odd }).run({ prompt: "x", timeout_ms: 1000 }, ctx())).rejects.toMatchObject({ code: "SHOAL_ERR_HTTP_FAILED", message: /chat-completions format/ });
  });
});

describe("http_request", () => {
  it("returns status and parsed JSON, errs on 4xx, and stops when its signal fires", async () => {
    const url = await serve((req, res) => {
      if (req.url === "/slow") return void setTimeout(() => res.end("late"), 2_000);
      if (req.url === "/missing") return void res.writeHead(404).end("nope");
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ok: true }));
    });
    await expect(httpRequest(local).run({ url: `${url}/x`, method: "GET", headers: {}, timeout_ms: 1000 }, ctx())).resolves.toMatchObject({ status: 200, body: { ok: true } });
    await expect(httpRequest(local).run({ url: `${url}/missing`, method: "GET", headers: {}, timeout_ms: 1000 }, ctx())).rejects.toMatchObject({ code: "SHOAL_ERR_HTTP_FAILED", message: /404/ });
    const abort = new AbortController();
    const pending = httpRequest(local).run({ url: `${url}/slow`, method: "GET", headers: {}, timeout_ms: 10_000 }, ctx({ signal: abort.signal }));
    abort.abort();
    await expect(pending).rejects.toMatchObject({ code: "SHOAL_ERR_HTTP_FAILED" });
  });
});

describe("http_request and llm_complete read at most --http-max-response-bytes", () => {
  const KIB = 1024;
  const get = (tool: ReturnType<typeof httpRequest>, url: string) => tool.run({ url, method: "GET", headers: {}, timeout_ms: 10_000 }, ctx());
  /** Serves `/endless` (chunked, no length, never ends), `/declared` (a Content-Length over the limit), `/bomb` (a small gzip of 50 MiB) and `/exact/N`; says when a response was cut off. */
  async function bigServer() {
    const closed: string[] = [];
    const bomb = gzipSync(Buffer.alloc(50 * KIB * KIB));
    const url = await serve((req, res) => {
      res.on("close", () => closed.push(req.url ?? ""));
      if (req.url?.startsWith("/endless")) {
        res.writeHead(200, { "content-type": "text/plain" });
        const chunk = Buffer.alloc(64 * KIB, 97);
        const pump = () => {
          while (!res.destroyed && res.write(chunk)) {}
          if (!res.destroyed) res.once("drain", pump);
        };
        return pump();
      }
      if (req.url === "/declared") {
        res.writeHead(200, { "content-length": String(100 * KIB * KIB) });
        return void res.write(Buffer.alloc(KIB)); // and then nothing: only the header is read
      }
      if (req.url === "/bomb") return void res.writeHead(200, { "content-encoding": "gzip", "content-length": String(bomb.length) }).end(bomb);
      const n = Number(req.url?.split("/")[2]);
      res.writeHead(200, { "content-type": "text/plain" }).end("y".repeat(n));
    });
    return { url, closed };
  }

  it("refuses a Content-Length over the limit before reading, cuts off a chunked body and a gzip bomb at it, and takes exactly the limit", async () => {
    const { url, closed } = await bigServer();
    const tool = httpRequest({ ...local, maxResponseBytes: 256 * KIB });
    const tooLarge = { code: "SHOAL_ERR_RESPONSE_TOO_LARGE", message: expect.stringMatching(/over the limit of 262144 bytes \(--http-max-response-bytes\)/) };
    await expect(get(tool, `${url}/declared`)).rejects.toMatchObject({ ...tooLarge, message: expect.stringMatching(/^GET .*\/declared: the response body is 104857600 bytes \(Content-Length\)/) });
    await expect(get(tool, `${url}/endless`)).rejects.toMatchObject({ ...tooLarge, message: expect.stringMatching(/^GET .*\/endless: the response body is more than that/) });
    await expect(get(tool, `${url}/bomb`)).rejects.toMatchObject(tooLarge);
    // The requests were ended, not left streaming into a buffer nobody reads.
    await expect.poll(() => closed.sort()).toEqual(["/bomb", "/declared", "/endless"]);
    await expect(get(tool, `${url}/exact/${256 * KIB}`)).resolves.toMatchObject({ status: 200, body: "y".repeat(256 * KIB) });
    await expect(get(tool, `${url}/exact/${256 * KIB + 1}`)).rejects.toMatchObject(tooLarge);
    // The default is 10 MiB.
    await expect(get(httpRequest(local), `${url}/exact/${1024 * KIB}`)).resolves.toMatchObject({ status: 200 });
    await expect(get(httpRequest(local), `${url}/endless`)).rejects.toMatchObject({ code: "SHOAL_ERR_RESPONSE_TOO_LARGE", message: expect.stringMatching(/limit of 10485760 bytes/) });
  });

  it("llm_complete reads its answer the same way", async () => {
    const { url } = await bigServer();
    const tool = llmComplete({ url: `${url}/endless` }, { maxResponseBytes: 64 * KIB });
    await expect(tool.run({ prompt: "x", timeout_ms: 10_000 }, ctx())).rejects.toMatchObject({ code: "SHOAL_ERR_RESPONSE_TOO_LARGE", message: expect.stringMatching(/^llm_complete: .*limit of 65536 bytes/) });
  });
});

describe("summarize", () => {
  it("turns camera reports into a plain-text summary", () => {
    const out = summarize.run(
      { context: [{ camera: "edge-01", verdict: "normal", brightness: 0.5 }, { camera: "edge-02", verdict: "normal", brightness: 0.41234 }] },
      ctx(),
    ) as { summary: string; items: number };
    expect(out.items).toBe(2);
    expect(out.summary).toBe("All 2 reports show normal operation.\n- edge-01: verdict normal, brightness 0.5\n- edge-02: verdict normal, brightness 0.412");
  });

  it("counts mixed verdicts and copes with nothing", () => {
    const mixed = summarize.run({ context: [{ verdict: "dark" }, { verdict: "normal" }, { verdict: "dark" }], title: "Cameras" }, ctx()) as { summary: string };
    expect(mixed.summary.split("\n")[0]).toBe("Cameras");
    expect(mixed.summary.split("\n")[1]).toBe("3 reports: 2 dark, 1 normal.");
    expect((summarize.run({ context: [] }, ctx()) as { summary: string }).summary).toMatch(/Nothing to summarize/);
  });
});
