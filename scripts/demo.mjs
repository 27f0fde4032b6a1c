// The README demo: the seed's example on a 3-node mesh on loopback. Two camera nodes get sample
// frames generated here (one still scene, one with motion); `shoal run` sends "analyze all
// cameras and summarize" to the GPU node, shows live progress and prints the result in the
// seed's response format; then the nodes stop. With SHOAL_LLM_URL set, the summary comes from
// that OpenAI-compatible endpoint (llm_complete on the GPU node) instead of `summarize`.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSampleFrames } from "../packages/tools/dist/index.js";

const root = join(import.meta.dirname, "..");
const CLI = join(root, "apps", "node", "dist", "cli.js");
const work = mkdtempSync(join(tmpdir(), "shoal-demo-"));
const llm = process.env.SHOAL_LLM_URL;
const nodes = [];

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = createServer().once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(check, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      if (await check()) return;
    } catch {}
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}
const say = (line = "") => process.stdout.write(`${line}\n`);

let exitCode = 0;
try {
  const scenes = {
    "edge-01": { background: 120, side: 0 }, // a still scene
    "edge-02": { background: 90, square: 230, side: 40 }, // something moves
  };
  for (const name of ["edge-01", "edge-02", "gpu-01"]) {
    const port = await freePort();
    const seed = nodes[0];
    const args = [CLI, "node", "--name", name, "--port", String(port), "--data-dir", join(work, name), "--log-level", "warn"];
    if (scenes[name]) {
      const dir = join(work, `${name}-camera`);
      writeSampleFrames(dir, { count: 3, width: 160, height: 120, ...scenes[name] });
      args.push("--capabilities", "camera", "--camera-dir", dir);
    } else {
      args.push("--capabilities", "gpu", ...(llm ? ["--llm-url", llm] : []));
    }
    if (seed) args.push("--join", `127.0.0.1:${seed.port}`);
    nodes.push({ name, port, child: spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"] }) });
    say(`started ${name} on 127.0.0.1:${port}${scenes[name] ? " (camera)" : " (gpu)"}${seed ? `, joined through ${seed.name}` : ""}`);
  }
  for (const n of nodes) {
    await until(async () => {
      const body = await (await fetch(`http://127.0.0.1:${n.port}/v1/nodes`)).json();
      return body.nodes.filter((r) => r.status === "up").length === 3;
    }, 20_000, `${n.name} to see the mesh`);
  }
  const gpu = nodes[2];
  const spec = join(root, "examples", llm ? "analyze-cameras-llm.json" : "analyze-cameras.json");
  say(`\nshoal run ${spec.slice(root.length + 1)} --node 127.0.0.1:${gpu.port}\n`);
  exitCode = await new Promise((resolve) => {
    const run = spawn(process.execPath, [CLI, "run", spec, "--node", `127.0.0.1:${gpu.port}`], { stdio: "inherit" });
    run.on("exit", (code) => resolve(code ?? 1));
  });
} catch (err) {
  process.stderr.write(`demo failed: ${err.message}\n`);
  exitCode = 1;
} finally {
  for (const n of nodes) n.child.kill("SIGTERM");
  await Promise.all(nodes.map((n) => (n.child.exitCode === null && n.child.signalCode === null ? new Promise((r) => n.child.once("exit", r)) : null)));
  rmSync(work, { recursive: true, force: true });
  say("\nstopped all nodes.");
  process.exitCode = exitCode;
}
