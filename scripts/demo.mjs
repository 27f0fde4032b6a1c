// The README demo: the seed's example on a 3-node mesh on loopback. Two camera nodes get sample
// frames generated here (one still scene, one with motion); `shoal run` sends "analyze all
// cameras and summarize" to the GPU node, shows live progress and prints the result in the
// seed's response format; then the nodes stop. With SHOAL_LLM_URL set, the summary comes from
// that OpenAI-compatible endpoint (llm_complete on the GPU node) instead of `summarize`.
// With --secure the mesh runs as it would across a site: a cluster CA, a certificate per node
// (mutual TLS on /mesh, https for the API) and an API token for `shoal run`.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSampleFrames } from "../packages/tools/dist/index.js";

const root = join(import.meta.dirname, "..");
const CLI = join(root, "apps", "node", "dist", "cli.js");
const work = mkdtempSync(join(tmpdir(), "shoal-demo-"));
const llm = process.env.SHOAL_LLM_URL;
const secure = process.argv.includes("--secure");
const nodes = [];

/** Runs `shoal ARGS` to completion; its stdout. */
function shoal(args) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`shoal ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** What the operator makes once: the CA, then per node a certificate; one token key, one token. */
function makeClusterKeys() {
  const caDir = join(work, "ca");
  shoal(["ca", "init", "--dir", caDir]);
  const tokenFile = join(work, "token");
  writeFileSync(tokenFile, shoal(["token", "create", "--key-file", join(work, "token.key"), "--scope", "submit", "--ttl", "1h"]), { mode: 0o600 });
  return { caDir, ca: readFileSync(join(caDir, "ca.crt"), "utf8"), tokenKey: join(work, "token.key"), tokenFile, token: readFileSync(tokenFile, "utf8").trim() };
}

/** GET a node's API as JSON, over https with the cluster CA and the token when secured. */
function getJson(port, path, keys) {
  if (!keys) return fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.json());
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, ca: keys.ca, headers: { authorization: `Bearer ${keys.token}` } }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => {
        try {
          resolve(JSON.parse(body));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on("error", reject);
    req.end();
  });
}

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
  const keys = secure ? makeClusterKeys() : undefined;
  if (keys) say(`made a cluster CA, node certificates and an API token in ${work}`);
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
    if (keys) {
      const tlsDir = join(work, `${name}-tls`);
      shoal(["cert", "issue", "--ca", keys.caDir, "--name", name, "--out", tlsDir]);
      args.push("--tls-dir", tlsDir, "--token-key-file", keys.tokenKey);
    }
    nodes.push({ name, port, child: spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"] }) });
    say(`started ${name} on 127.0.0.1:${port}${scenes[name] ? " (camera)" : " (gpu)"}${seed ? `, joined through ${seed.name}` : ""}`);
  }
  for (const n of nodes) {
    await until(async () => {
      const body = await getJson(n.port, "/v1/nodes", keys);
      return body.nodes.filter((r) => r.status === "up").length === 3;
    }, 20_000, `${n.name} to see the mesh`);
  }
  const gpu = nodes[2];
  const spec = join(root, "examples", llm ? "analyze-cameras-llm.json" : "analyze-cameras.json");
  const runArgs = ["run", spec, "--node", `127.0.0.1:${gpu.port}`, ...(keys ? ["--ca", join(keys.caDir, "ca.crt"), "--token-file", keys.tokenFile] : [])];
  say(`\nshoal ${runArgs.join(" ").replace(`${root}/`, "").replaceAll(`${work}/`, "")}\n`);
  exitCode = await new Promise((resolve) => {
    const run = spawn(process.execPath, [CLI, ...runArgs], { stdio: "inherit" });
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
