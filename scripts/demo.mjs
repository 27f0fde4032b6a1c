// The README demo: a 3-node mesh on loopback. Prints the membership table as each node sees it,
// kills one node with SIGKILL, prints the tables again once the others mark it down, then stops.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CLI = join(import.meta.dirname, "..", "apps", "node", "dist", "cli.js");
const work = mkdtempSync(join(tmpdir(), "shoal-demo-"));
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
const nodesOf = async (port) => (await (await fetch(`http://127.0.0.1:${port}/v1/nodes`)).json()).nodes;
const say = (line = "") => process.stdout.write(`${line}\n`);
function table(port) {
  // The product's own CLI prints the table.
  const r = spawnSync(process.execPath, [CLI, "nodes", "--node", `127.0.0.1:${port}`], { encoding: "utf8" });
  say(r.stdout.trimEnd().replace(/^/gm, "  "));
  say();
}

try {
  for (const name of ["edge-01", "edge-02", "gpu-01"]) {
    const port = await freePort();
    const seed = nodes[0];
    const args = [CLI, "node", "--name", name, "--port", String(port), "--data-dir", join(work, name), "--log-level", "warn",
      "--capabilities", name.startsWith("gpu") ? "gpu" : "camera"];
    if (seed) args.push("--join", `127.0.0.1:${seed.port}`);
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"] });
    nodes.push({ name, port, child });
    say(`started ${name} on 127.0.0.1:${port}${seed ? ` (joins through ${seed.name})` : ""}`);
  }
  for (const n of nodes) {
    await until(async () => (await nodesOf(n.port)).filter((r) => r.status === "up").length === 3, 20_000, `${n.name} to see 3 nodes up`);
  }
  say("\nall three nodes see each other:\n");
  for (const n of nodes) table(n.port);

  const victim = nodes[2];
  say(`killing ${victim.name} with SIGKILL ...`);
  const killedAt = Date.now();
  victim.child.kill("SIGKILL");
  const survivors = nodes.slice(0, 2);
  for (const n of survivors) {
    await until(async () => (await nodesOf(n.port)).find((r) => r.name === victim.name)?.status === "down", 10_000, `${n.name} to mark ${victim.name} down`);
  }
  say(`both survivors marked ${victim.name} down within ${Date.now() - killedAt} ms:\n`);
  for (const n of survivors) table(n.port);
} finally {
  for (const n of nodes) n.child.kill("SIGTERM");
  await Promise.all(nodes.map((n) => (n.child.exitCode === null && n.child.signalCode === null ? new Promise((r) => n.child.once("exit", r)) : null)));
  rmSync(work, { recursive: true, force: true });
  say("stopped all nodes.");
}
