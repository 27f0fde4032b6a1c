import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runScript } from "../support/shoalProcess.js";

const DEMO = resolve(import.meta.dirname, "../../scripts/demo.mjs");
const servers: Server[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

const demo = (env: Record<string, string> = {}) => runScript(DEMO, [], env);
const resultIn = (stdout: string) => JSON.parse(stdout.slice(stdout.indexOf("{\n"), stdout.lastIndexOf("}") + 1));

describe("the README demo", () => {
  it("runs the seed's example on a 3-node mesh, shows progress and the seed-format result, then stops", async () => {
    const r = await demo();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/started edge-01 .*\(camera\)/);
    expect(r.stdout).toMatch(/started gpu-01 .*\(gpu\)/);
    expect(r.stdout).toMatch(/analyze\[0\] +running +on edge-01|analyze\[0\] +complete on edge-01/);
    expect(r.stdout).toMatch(/stopped all nodes\.\s*$/);
    const result = resultIn(r.stdout);
    expect(result).toMatchObject({ status: "complete", steps_completed: 3, steps_failed: 0, failures: [] });
    expect(result.result.summarize.verdicts).toEqual({ normal: 1, motion: 1 });
  });

  it("--secure runs it on a mesh with mutual TLS and API tokens: a CA, a certificate per node, a token for shoal run", async () => {
    const r = await runScript(DEMO, ["--secure"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/made a cluster CA, node certificates and an API token/);
    expect(r.stdout).toMatch(/shoal run examples\/analyze-cameras.json --node 127.0.0.1:\d+ --ca ca\/ca.crt --token-file token/);
    expect(resultIn(r.stdout)).toMatchObject({ status: "complete", steps_completed: 3, steps_failed: 0 });
  });

  it("with SHOAL_LLM_URL the summary comes from the LLM endpoint, on the GPU node", async () => {
    const prompts: string[] = [];
    const llm = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        prompts.push(JSON.parse(body).messages.at(-1).content);
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ model: "edge-llm", choices: [{ message: { role: "assistant", content: "edge-02 sees motion; edge-01 is quiet." }, finish_reason: "stop" }] }));
      });
    });
    servers.push(llm);
    await new Promise<void>((r) => llm.listen(0, "127.0.0.1", r));
    const r = await demo({ SHOAL_LLM_URL: `http://127.0.0.1:${(llm.address() as AddressInfo).port}/v1` });
    expect(r.code, r.stderr).toBe(0);
    const result = resultIn(r.stdout);
    expect(result.result.summarize).toMatchObject({ text: "edge-02 sees motion; edge-01 is quiet.", model: "edge-llm" });
    expect(result.nodes_used).toContain("gpu-01");
    expect(prompts[0]).toMatch(/Summarize the camera reports/);
    expect(prompts[0]).toMatch(/"verdict": "motion"/);
  });
});
