import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NodeProcess, freePort, runCli, runCliAsync, startMesh, stopAll, until } from "../support/shoalProcess.js";

let nodes: NodeProcess[] = [];
beforeAll(async () => {
  nodes = (await startMesh(["n-a", "n-b"], { extra: ["--capabilities", "camera"] })).nodes;
  await until(async () => (await nodes[1]!.nodes()).filter((r) => r.status === "up").length === 2, 10_000);
});
afterAll(async () => {
  await stopAll(nodes);
});


describe("shoal nodes", () => {
  it("prints the membership table as the given node sees it", async () => {
    const r = await runCliAsync(["nodes", "--node", nodes[1]!.address]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toBe("mesh as seen by n-b (* = that node)");
    expect(lines[1]).toMatch(/^NAME\s+STATUS\s+ADDRESS\s+CAPABILITIES\s+LOAD\s+LAST SEEN\s+ID$/);
    expect(lines.slice(2).sort()).toEqual([
      expect.stringMatching(/^n-a\s+up\s+127\.0\.0\.1:\d+\s+camera\s+0\/4\s+\d+ ms\s+[0-9a-f]{8}$/),
      expect.stringMatching(/^n-b \*\s+up\s+127\.0\.0\.1:\d+\s+camera\s+0\/4\s+-\s+[0-9a-f]{8}$/),
    ]);
  });

  it("prints JSON with --json", async () => {
    const r = await runCliAsync(["nodes", "--node", nodes[0]!.address, "--json"]);
    const body = JSON.parse(r.stdout);
    expect(body.node).toBe("n-a");
    expect(body.nodes).toHaveLength(2);
  });

  it("fails with one line when no node answers", async () => {
    const r = runCli(["nodes", "--node", `127.0.0.1:${await freePort()}`]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^shoal: SHOAL_ERR_UNREACHABLE: cannot reach a node at 127\.0\.0\.1:\d+ \(ECONNREFUSED\)$/);
  });
});

describe("GET /metrics", () => {
  it("exposes peers by status and transport counters in Prometheus text", async () => {
    const { text, status } = await nodes[0]!.get("/metrics");
    expect(status).toBe(200);
    expect(text).toMatch(/^shoal_peers\{status="up"\} 1$/m);
    expect(text).toMatch(/^shoal_peers\{status="down"\} 0$/m);
    for (const name of ["frames_in", "frames_out", "bytes_in", "bytes_out", "bad_frames", "reconnects", "dropped_frames", "auth_failures"]) {
      expect(text).toMatch(new RegExp(`^# TYPE shoal_${name}_total counter$`, "m"));
    }
    expect(Number(/^shoal_frames_in_total (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(text).toMatch(/^shoal_process_resident_memory_bytes \d+/m);
  });

  it("answers unknown routes and methods with JSON errors", async () => {
    const missing = await nodes[0]!.get("/v1/nope");
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe("SHOAL_ERR_NOT_FOUND");
    const wrongMethod = await nodes[0]!.post("/v1/nodes");
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.json.error.code).toBe("SHOAL_ERR_METHOD_NOT_ALLOWED");
  });
});
