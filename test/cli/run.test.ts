import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NodeProcess, freePort, NodeProcess as Node, runCliAsync, stopAll, tempDir, until } from "../support/shoalProcess.js";

const ROOT = resolve(import.meta.dirname, "../..");
const started: NodeProcess[] = [];
let gpu: NodeProcess;
const expected: Record<string, { brightness: number; motion: number }> = {};
/** The http_request step below must get as far as a closed port on this box, wherever it runs. */
const REACH_LOOPBACK = ["--egress-allow", "loopback"];


beforeAll(async () => {
  const { writeSampleFrames } = await import("@shoal/tools");
  const work = tempDir("cams-");
  const scenes = { "cam-1": { background: 120, side: 0 }, "cam-2": { background: 90, square: 230, side: 40 } } as const;
  for (const [name, scene] of Object.entries(scenes)) {
    const dir = join(work, name);
    expected[name] = writeSampleFrames(dir, { count: 3, width: 160, height: 120, ...scene });
    const seed = started[0];
    started.push(new Node({ name, port: await freePort(), join: seed ? [seed.address] : [], extra: ["--capabilities", "camera", "--camera-dir", dir, ...REACH_LOOPBACK] }).start());
  }
  gpu = new Node({ name: "gpu", port: await freePort(), join: [started[0]!.address], extra: ["--capabilities", "gpu", ...REACH_LOOPBACK] }).start();
  started.push(gpu);
  await Promise.all(started.map((n) => n.ready()));
  await until(async () => (await gpu.nodes()).filter((r) => r.status === "up").length === 3, 10_000);
});
afterAll(async () => {
  await stopAll(started);
});

describe("shoal run and shoal status", () => {
  it("runs the seed's example: vision_agent on each camera, then summarize; live progress, then the result", async () => {
    const r = await runCliAsync(["run", join(ROOT, "examples/analyze-cameras.json"), "--node", gpu.address]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(/^workflow wf_[a-z0-9]+ submitted to 127\.0\.0\.1:\d+$/);
    expect(r.stdout).toMatch(/\[#{24}\] 3\/3 {2}complete/);
    expect(r.stdout).toMatch(/analyze\[0\] +complete on cam-1/);
    expect(r.stdout).toMatch(/analyze\[1\] +complete on cam-2/);
    const json = JSON.parse(r.stdout.slice(r.stdout.indexOf("{")));
    expect(json).toMatchObject({ status: "complete", steps_completed: 3, steps_failed: 0, nodes_used: expect.arrayContaining(["cam-1", "cam-2"]) });
    expect(json.result.summarize.summary).toMatch(/- cam-1: frames 3, brightness 0\.47\d*, motion 0, verdict normal/);
    expect(json.result.summarize.summary).toMatch(/- cam-2: .*verdict motion/);
    expect(json.result.summarize.verdicts).toEqual({ normal: 1, motion: 1 });

    const state = await runCliAsync(["status", json.workflow_id, "--node", started[0]!.address]);
    const s = JSON.parse(state.stdout);
    expect(s.steps["analyze[1]"].result.motion).toBeCloseTo(expected["cam-2"]!.motion, 3);
    expect(s.steps["analyze[0]"].result.brightness).toBeCloseTo(expected["cam-1"]!.brightness, 3);
  });

  it("--json prints only the result", async () => {
    const r = await runCliAsync(["run", join(ROOT, "examples/analyze-cameras.json"), "--node", gpu.address, "--json"]);
    expect(JSON.parse(r.stdout).status).toBe("complete");
  });

  it("a bad spec file fails with one line naming the step; a failed workflow exits 1", async () => {
    const dir = tempDir("specs-");
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "name: x\nsteps:\n  - id: a\n    tool: vision_agent\n    needs: [ghost]\n");
    const r = await runCliAsync(["run", bad, "--node", gpu.address]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('shoal: SHOAL_ERR_BAD_SPEC: step a: needs "ghost", which is not a step of this workflow');
    const failing = join(dir, "failing.json");
    writeFileSync(failing, JSON.stringify({ name: "f", steps: [{ id: "h", tool: "http_request", input: { url: "http://127.0.0.1:9/nothing", timeout_ms: 500 }, retries: 0 }] }));
    const f = await runCliAsync(["run", failing, "--node", gpu.address, "--json"]);
    expect(f.code).toBe(1);
    expect(JSON.parse(f.stdout)).toMatchObject({ status: "failed", failures: [{ step: "h", error: { code: "SHOAL_ERR_HTTP_FAILED" } }] });
    expect((await runCliAsync(["status", "wf_nosuchthing", "--node", gpu.address])).stderr).toMatch(/SHOAL_ERR_UNKNOWN_WORKFLOW/);
  });

  it("refuses at least 15 kinds of bad specs over HTTP with a 400 naming the problem, and stays healthy", async () => {
    const base = (steps: unknown[], extra: object = {}) => ({ name: "x", steps, ...extra });
    const bad: [unknown, RegExp][] = [
      ["not json at all", /not JSON|expected object/],
      [{}, /name|steps/],
      [base([]), /steps/],
      [base([{ id: "a", tool: "summarize" }], { extra: true }), /extra/],
      [base([{ id: "a", tool: "summarize", bogus: 1 }]), /step a: .*bogus/],
      [base([{ id: "a" }]), /step a: tool: a step runs exactly one/],
      [base([{ id: "a", tool: "summarize" }, { id: "a", tool: "summarize" }]), /step a: the id is used twice/],
      [base([{ id: "a", tool: "summarize", needs: ["zzz"] }]), /step a: needs "zzz"/],
      [base([{ id: "a", tool: "summarize", input: { $from: "nope" } }]), /step a: \$from "nope" points to no step/],
      [base([{ id: "a", tool: "summarize", needs: ["b"] }, { id: "b", tool: "summarize", needs: ["a"] }]), /form a cycle/],
      [base([{ id: "a", tool: "warp_drive" }]), /step a: no node in the mesh has tool "warp_drive"/],
      [base([{ id: "a", tool: "summarize", placement: { capabilities: ["lidar"] } }]), /step a: no live node can run summarize with lidar/],
      [base([{ id: "a", tool: "vision_agent", for_each: { nodes: { capabilities: ["gpu"] } } }]), /step a: for_each matches no live node/],
      [base([{ id: "a", tool: "summarize", placement: { node: "nowhere" } }]), /step a: pinned node nowhere/],
      [base([{ id: "a", tool: "summarize", timeout_ms: 0 }]), /step a: timeout_ms/],
      [base([{ id: "a", tool: "summarize", retries: -1 }]), /step a: retries/],
      [base([{ id: "a", tool: "summarize" }], { deadline_ms: "soon" }), /deadline_ms/],
    ];
    for (const [spec, message] of bad) {
      const r = await gpu.request("POST", "/v1/workflows", typeof spec === "string" ? spec : spec);
      expect(r.status, JSON.stringify(spec)).toBe(400);
      expect(r.json.error.code).toMatch(/^SHOAL_ERR_BAD_(SPEC|REQUEST)$/);
      expect(r.json.error.message).toMatch(message);
    }
    expect((await gpu.get("/healthz")).json.ok).toBe(true);
    const ok = await gpu.post("/v1/workflows?wait=1", base([{ id: "a", tool: "summarize", input: { context: [] } }]));
    expect(ok.json.status).toBe("complete");
  });
});
