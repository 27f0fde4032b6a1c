import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { WorkflowResultSchema } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { NodeProcess, freePort, stopAll, tempDir, until } from "../support/shoalProcess.js";
import { FAST, PLUGIN, resultOf, submit, workflowMesh } from "../support/workflowMesh.js";

const CRASHING = resolve(import.meta.dirname, "../fixtures/plugins/crashing.mjs");
const MIB = 1024 * 1024;

const started: NodeProcess[] = [];
const servers: Server[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** Resident memory of a node process now, and at its peak so far (Linux /proc), in bytes. */
function memoryOf(node: NodeProcess): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${node.pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]) * 1024;
  return { rss: kib("VmRSS"), peak: kib("VmHWM") };
}

/** Sends a request and keeps what the HTTP layer says besides the body. */
async function post(node: NodeProcess, path: string, body: unknown) {
  const res = await fetch(`http://${node.address}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, retryAfter: res.headers.get("retry-after"), json: (await res.json()) as any };
}

const quick = { name: "quick", steps: [{ id: "only", tool: "sleep_tool", input: { ms: 10 } }] };

describe("admission: a node refuses what it cannot hold, stays up and keeps serving", () => {
  it("the poison spec (20 steps x 10,000 items) gets 400 SHOAL_ERR_TOO_MANY_INSTANCES naming its step; memory stays flat, nothing is stored", async () => {
    const { nodes } = await workflowMesh([{ name: "p-a" }], started);
    const [a] = nodes as [NodeProcess];
    const poison = { name: "poison", steps: Array.from({ length: 20 }, (_, i) => ({ id: `s${i}`, tool: "sleep_tool", for_each: { items: Array.from({ length: 10_000 }, (_, k) => k) }, input: { ms: 1 } })) };
    const body = JSON.stringify(poison);
    expect(body.length).toBeGreaterThan(400_000);
    const before = memoryOf(a);
    for (let i = 0; i < 5; i++) {
      const r = await post(a, "/v1/workflows", body);
      expect(r.status).toBe(400);
      expect(r.json.error).toEqual({
        code: "SHOAL_ERR_TOO_MANY_INSTANCES",
        message: "step s0: the workflow would have 200000 instances; it passes the limit of 5000 (--max-workflow-instances) at this step, whose for_each makes 10000",
        path: ["steps", 0, "for_each"],
      });
    }
    const after = memoryOf(a);
    // Before the count, one such body took the heap past 2 GB.
    expect(after.peak - before.peak, `RSS peak ${before.peak / MIB} -> ${after.peak / MIB} MiB`).toBeLessThan(150 * MIB);
    expect((await a.get("/healthz")).status).toBe(200);
    expect((await a.get("/v1/workflows")).json.workflows).toEqual([]);
    await expect(resultOf(a, await submit(a, quick))).resolves.toMatchObject({ status: "complete" });

    // Restarted with its data dir, it has only the workflow it accepted.
    await a.kill("SIGKILL");
    const logged = a.logs.length;
    a.restart();
    await a.ready();
    await until(() => a.logs.slice(logged).some((l) => l.msg === "workflows taken back from the store"), 10_000, () => "the store was never read");
    expect(a.logs.slice(logged).find((l) => l.msg === "workflows taken back from the store")).toMatchObject({ resumed: 0, ended: 1 });
    expect((await a.get("/v1/workflows")).json.workflows.map((w: { name: string }) => w.name)).toEqual(["quick"]);
  });

  it("--max-workflows 2: a third submit gets 429 SHOAL_ERR_OVERLOADED with Retry-After; a place that frees up is taken again", async () => {
    const dir = tempDir("maxwf-");
    const a = new NodeProcess({ name: "m-a", port: await freePort(), extra: ["--plugin", PLUGIN, "--max-workflows", "2", ...FAST], env: { SHOAL_TEST_DIR: dir } });
    started.push(a.start());
    await a.ready();
    const long = { name: "long", steps: [{ id: "wait", tool: "sleep_tool", input: { ms: 60_000 } }] };
    const first = await submit(a, long);
    await submit(a, long);
    const refused = await post(a, "/v1/workflows", long);
    expect(refused.status).toBe(429);
    expect(refused.json.error).toEqual({ code: "SHOAL_ERR_OVERLOADED", message: "m-a already runs 2 workflows, its maximum (--max-workflows 2); try again later" });
    expect(refused.retryAfter).toBe("1");
    expect((await a.get("/healthz")).status).toBe(200);
    expect((await a.post(`/v1/workflows/${first}/cancel`)).status).toBe(200);
    await until(async () => (await a.get(`/v1/workflows/${first}`)).json.status !== "running", 10_000);
    expect((await post(a, "/v1/workflows", quick)).status).toBe(202);
  });

  it("an http_request step answered with 200 MB fails with SHOAL_ERR_RESPONSE_TOO_LARGE at --http-max-response-bytes; the request is cut off and memory stays bounded", async () => {
    let sent = 0;
    const server = createServer((req, res) => {
      req.resume();
      // 200 MB, chunked (no Content-Length to refuse it by): only counting stops it.
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(MIB, 120);
      const pump = () => {
        while (!res.destroyed && sent < 200 * MIB * 2) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/big`;
    const a = new NodeProcess({ name: "h-a", port: await freePort(), extra: ["--http-max-response-bytes", String(8 * MIB), "--egress-allow", "loopback", ...FAST] });
    started.push(a.start());
    await a.ready();
    const before = memoryOf(a);
    const id = await submit(a, { name: "fetch-big", steps: [{ id: "fetch", tool: "http_request", input: { url, timeout_ms: 60_000 }, retries: 1 }] });
    const result = await resultOf(a, id, 60_000);
    expect(result).toMatchObject({ status: "failed", steps_failed: 1 });
    expect(result.failures).toEqual([
      {
        step: "fetch",
        node: "h-a",
        attempts: 2,
        error: { code: "SHOAL_ERR_RESPONSE_TOO_LARGE", message: expect.stringMatching(/^GET http:\/\/127\.0\.0\.1:\d+\/big: the response body is more than that .*over the limit of 8388608 bytes \(--http-max-response-bytes\)$/) },
      },
    ]);
    const after = memoryOf(a);
    // Two attempts, each cut off at 8 MiB: far from the 200 MB each would have read whole.
    expect(sent, "bytes the server got to send").toBeLessThan(2 * 40 * MIB);
    expect(after.peak - before.peak, `RSS peak ${before.peak / MIB} -> ${after.peak / MIB} MiB`).toBeLessThan(100 * MIB);
    expect((await a.get("/healthz")).status).toBe(200);
  });

  it("POST /v1/actors that no node can take (each at its --max-actors) gets 429 SHOAL_ERR_OVERLOADED", async () => {
    const dir = tempDir("maxactors-");
    const nodes: NodeProcess[] = [];
    for (const [name, extra] of [
      ["x-a", ["--slots", "0"]],
      ["x-b", ["--slots", "50", "--max-actors", "1"]],
    ] as const) {
      const n = new NodeProcess({ name, port: await freePort(), join: nodes[0] ? [nodes[0].address] : [], extra: ["--plugin", PLUGIN, ...extra, ...FAST], env: { SHOAL_TEST_DIR: dir } });
      nodes.push(n);
      started.push(n.start());
      await n.ready();
    }
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    await until(async () => (await a.nodes()).filter((r) => r.status === "up" && r.name === "x-b" && r.tools.includes("counter")).length === 1, 10_000);
    const first = await post(a, "/v1/actors", { logic: "counter" });
    expect(first.status, JSON.stringify(first.json)).toBe(201);
    expect(first.json).toMatchObject({ node: "x-b", status: "running" });
    const refused = await post(a, "/v1/actors", { logic: "counter" });
    expect(refused.status).toBe(429);
    expect(refused.json.error).toEqual({ code: "SHOAL_ERR_OVERLOADED", message: "no node can take another counter actor now: x-b hosts 1 actors, its maximum (--max-actors 1)" });
    expect(refused.retryAfter).toBe("1");
    expect((await b.get("/v1/actors")).json.actors).toHaveLength(1);
    expect((await a.get("/healthz")).status).toBe(200);
  });
});

describe("quarantine: a workflow that crashes its owner on resume", () => {
  it("is ended failed with SHOAL_ERR_QUARANTINED after 2 crashes; the third start comes up and serves", async () => {
    // One node: the poison step must run on the owner itself.
    const dir = tempDir("quarantine-");
    const a = new NodeProcess({ name: "q-a", port: await freePort(), extra: ["--plugin", PLUGIN, "--plugin", CRASHING, ...FAST], env: { SHOAL_TEST_DIR: dir } });
    started.push(a.start());
    await a.ready();
    const marker = join(dir, "poison-marker");
    const id = await submit(a, {
      name: "poison",
      steps: [
        { id: "before", tool: "sleep_tool", input: { ms: 10 } },
        { id: "poison", tool: "crash_when_marked", needs: ["before"], input: { marker, ms: 60_000 } },
        { id: "after", tool: "sleep_tool", needs: ["poison"], input: { ms: 10 } },
      ],
    });
    const crashes = () => (existsSync(join(dir, "crashes.log")) ? readFileSync(join(dir, "crashes.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l)) : []);
    await until(() => crashes().length === 1, 10_000, () => "the poison step never started");
    // With `before` stored complete, a resume runs the poison step at once, before any progress.
    const stored = (l: Record<string, unknown>) => l.msg === "stored workflow progress" && (l.stored as string[]).includes(`${id}/before`);
    await until(() => a.logsMatching(stored).length > 0, 5_000, () => "before's outcome was never stored");
    // From now on the step kills its node whenever it runs. The first crash is this kill.
    writeFileSync(marker, "");
    await a.kill("SIGKILL");

    for (const n of [1, 2]) {
      // As a supervisor (systemd) would: start it again, same port and data dir.
      a.restart();
      const exit = await Promise.race([a.exit(), new Promise((r) => setTimeout(() => r("still up"), 20_000))]);
      expect(exit, `start ${n} should have been crashed by the resumed workflow`).toBeNull();
      expect(crashes().filter((c) => c.marked)).toHaveLength(n);
    }

    const logged = a.logs.length;
    a.restart();
    await a.ready();
    await until(async () => (await a.get(`/v1/workflows/${id}`)).json?.status === "failed", 15_000, () => "the poison workflow was not ended");
    const state = (await a.get(`/v1/workflows/${id}`)).json;
    expect(state.steps.before).toMatchObject({ status: "complete" });
    expect(state.steps.poison).toMatchObject({ status: "failed", error: { code: "SHOAL_ERR_QUARANTINED", message: `workflow ${id} crashed q-a each of the 2 times it was resumed; it is not run again` } });
    expect(state.steps.after).toMatchObject({ status: "skipped", error: { code: "SHOAL_ERR_QUARANTINED" } });
    const result = WorkflowResultSchema.parse((await a.get(`/v1/workflows/${id}/result`)).json);
    expect(result).toMatchObject({ status: "failed", steps_completed: 1 });
    expect(result.failures.map((f) => [f.step, f.error.code])).toEqual([
      ["poison", "SHOAL_ERR_QUARANTINED"],
      ["after", "SHOAL_ERR_QUARANTINED"],
    ]);
    expect(a.logs.slice(logged).filter((l) => l.msg === "workflows taken back from the store")).toEqual([expect.objectContaining({ resumed: 0, quarantined: 1 })]);
    expect(crashes().filter((c) => c.marked)).toHaveLength(2); // not run a third time

    expect((await a.get("/healthz")).status).toBe(200);
    await expect(resultOf(a, await submit(a, quick))).resolves.toMatchObject({ status: "complete" });
    // Ended, it stays so across a restart.
    await a.kill("SIGKILL");
    a.restart();
    await a.ready();
    await until(async () => (await a.get(`/v1/workflows/${id}/result`)).json?.status === "failed", 10_000);
    expect(crashes().filter((c) => c.marked)).toHaveLength(2);
  });
});
