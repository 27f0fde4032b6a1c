import { createHmac } from "node:crypto";
import { chmodSync, writeFileSync } from "node:fs";
import { type IncomingHttpHeaders, type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeProcess, freePort, stopAll, tempDir, until } from "../support/shoalProcess.js";

/**
 * Egress rules on real nodes: what a caller puts in a workflow (an http_request step, a webhook)
 * cannot reach the box's own services or its cloud's metadata unless the node's config says so.
 */
const started: NodeProcess[] = [];
let box: Server;
let port: number;
const seen: { url: string; headers: IncomingHttpHeaders; body: string }[] = [];

beforeAll(async () => {
  // The box's own service, or the webhook receiver: whatever listens on loopback.
  box = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({ url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ secret: "admin page" }));
    });
  });
  await new Promise<void>((r) => box.listen(0, "127.0.0.1", r));
  port = (box.address() as AddressInfo).port;
});
afterAll(async () => {
  await stopAll(started);
  box.close();
});

async function node(name: string, extra: string[] = []): Promise<NodeProcess> {
  const n = new NodeProcess({ name, port: await freePort(), extra }).start();
  started.push(n);
  return n.ready();
}

const fetchStep = (id: string, url: string) => ({ id, tool: "http_request", input: { url, timeout_ms: 5_000 }, retries: 0 });

describe("egress rules on a node with its defaults", () => {
  it("an http_request step to this box (any spelling), to localhost or to the metadata address fails with SHOAL_ERR_EGRESS_DENIED naming the address and the setting; nothing is sent; the node works on", async () => {
    const n = await node("eg-default");
    const spec = {
      name: "ssrf",
      steps: [
        fetchStep("loopback", `http://127.0.0.1:${port}/admin`),
        fetchStep("decimal", `http://2130706433:${port}/admin`),
        fetchStep("mapped", `http://[::ffff:127.0.0.1]:${port}/admin`),
        fetchStep("localhost", `http://localhost:${port}/admin`),
        fetchStep("metadata", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
      ],
    };
    const r = await n.request("POST", "/v1/workflows?wait=1", spec);
    expect(r.status).toBe(200);
    expect(r.json.status).toBe("failed");
    const errors = Object.fromEntries(r.json.failures.map((f: { step: string; error: { code: string; message: string } }) => [f.step, f.error]));
    const loopback = (address: string) => ({ code: "SHOAL_ERR_EGRESS_DENIED", message: expect.stringMatching(new RegExp(`refused to connect to .*${address}.*: a loopback address; .*--egress-allow loopback`)) });
    expect(errors).toEqual({
      loopback: loopback("127\\.0\\.0\\.1"),
      decimal: loopback("127\\.0\\.0\\.1"),
      mapped: loopback("127\\.0\\.0\\.1"),
      localhost: loopback("localhost \\((127\\.0\\.0\\.1|::1)\\)"),
      metadata: { code: "SHOAL_ERR_EGRESS_DENIED", message: expect.stringMatching(/169\.254\.169\.254: a cloud metadata address; .*--egress-allow metadata,link-local/) },
    });
    expect(seen).toEqual([]);
    expect((await n.get("/healthz")).status).toBe(200);
  });

  it("a webhook to this box is not posted: logged with SHOAL_ERR_EGRESS_DENIED, and the workflow completes", async () => {
    const n = await node("eg-hook-default");
    const r = await n.request("POST", "/v1/workflows?wait=1", { name: "hooked", notify: { url: `http://127.0.0.1:${port}/hook` }, steps: [{ id: "s", tool: "summarize", input: { context: [] } }] });
    expect(r.json.status).toBe("complete");
    await until(() => n.logsMatching((l) => l.code === "SHOAL_ERR_EGRESS_DENIED").length >= 2, 5_000, () => "no egress refusal logged for the webhook");
    expect(seen).toEqual([]);
  });
});

describe("egress rules a node's config relaxes", () => {
  it("egress-allow loopback lets the step through, with the step key as Idempotency-Key", async () => {
    const n = await node("eg-allowed", ["--egress-allow", "loopback"]);
    const r = await n.request("POST", "/v1/workflows?wait=1", { name: "local", steps: [fetchStep("fetch", `http://localhost:${port}/status`)] });
    expect(r.json).toMatchObject({ status: "complete", result: { fetch: { status: 200, body: { secret: "admin page" } } } });
    expect(seen.map((s) => s.url)).toEqual(["/status"]);
    expect(seen[0]?.headers["idempotency-key"]).toBe(`${r.json.workflow_id}/fetch`);
    seen.length = 0;
  });

  it("webhooks of a node with --webhook-secret-file carry Idempotency-Key and a Shoal-Signature over the exact body", async () => {
    const secretFile = join(tempDir("hook-"), "webhook.secret");
    writeFileSync(secretFile, "hook sesame\n");
    chmodSync(secretFile, 0o600);
    const n = await node("eg-signed", ["--egress-allow", "loopback", "--webhook-secret-file", secretFile]);
    const r = await n.request("POST", "/v1/workflows?wait=1", { name: "signed", notify: { url: `http://127.0.0.1:${port}/hook` }, steps: [{ id: "s", tool: "summarize", input: { context: [] } }] });
    expect(r.json.status).toBe("complete");
    await until(() => seen.length === 2, 5_000, () => `webhook posts: ${seen.length}`);
    for (const post of seen) {
      const event = JSON.parse(post.body);
      expect(event).toMatchObject({ workflow_id: r.json.workflow_id, name: "signed", event_id: expect.stringMatching(/^evt_[0-9a-f]{24}$/) });
      expect(post.headers["idempotency-key"]).toBe(event.event_id);
      const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(post.headers["shoal-signature"])) ?? [];
      expect(Math.abs(Date.now() / 1000 - Number(t))).toBeLessThan(60);
      // The key is the file's text, trimmed, as for every secret file.
      expect(v1).toBe(createHmac("sha256", "hook sesame").update(`${t}.${post.body}`).digest("hex"));
    }
    expect(seen.map((s) => JSON.parse(s.body).event)).toEqual(["workflow.started", "workflow.finished"]);
  });
});
