#!/usr/bin/env node
// HTTP API benchmark: request rate and latency of GET /healthz and GET /v1/nodes on this
// checkout's `shoal node`, next to a baseline checkout's in the same run. See README.md here.
//
//   node test/bench/http/run.mjs [--baseline DIR] [--candidate DIR] [--client wrk|node] [--seconds N] [--blocks N] [--no-pin]
//
// Both nodes are real processes, started side by side and measured in alternating blocks, so
// that drift (thermal, other load) hits both alike. Exits 0 with a report; 1 when something broke.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { option } from "../lib/args.mjs";
import { atExit, command, runMain, stop, track } from "../lib/children.mjs";
import { forkOn, spawnOn, wantPinning } from "../lib/pin.mjs";
import { freePort, healthy, outputTail } from "../lib/shoal-node.mjs";
import { median } from "../lib/stats.mjs";
import { ratio, table } from "../lib/table.mjs";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const CHECKOUT = resolve(here("../../.."));
const args = process.argv.slice(2);
const SETTINGS = {
  seconds: Number(option(args, "--seconds") ?? 3), // per block
  blocks: Number(option(args, "--blocks") ?? 3), // per build and scenario, alternating builds
  warmupSeconds: 1, // per build and scenario, not counted
};
const SCENARIOS = [
  { path: "/healthz", connections: 1 },
  { path: "/healthz", connections: 16 },
  { path: "/v1/nodes", connections: 1 },
  { path: "/v1/nodes", connections: 16 },
];

const log = (...a) => console.error(...a);
const commitOf = (dir) => execFileSync("git", ["-C", dir, "log", "-1", "--format=%h %s"], { encoding: "utf8" }).trim().slice(0, 60);

function builds() {
  const baseline = option(args, "--baseline") ?? process.env.SHOAL_BENCH_BASELINE;
  const list = [];
  if (baseline) {
    const cli = join(resolve(baseline), "apps/node/dist/cli.js");
    if (!existsSync(cli)) throw new Error(`no ${cli}: build the baseline checkout first (see README.md)`);
    list.push({ name: "baseline", commit: commitOf(baseline), cli });
  }
  const candidate = resolve(option(args, "--candidate") ?? CHECKOUT);
  list.push({ name: candidate === CHECKOUT ? "this checkout" : "candidate", commit: commitOf(candidate), cli: join(candidate, "apps/node/dist/cli.js") });
  return list;
}

async function startNode(build, cpu, dataRoot) {
  const port = await freePort();
  const name = `bench-${build.name.replace(/\W+/g, "-")}`;
  const child = spawnOn(cpu, [build.cli, "node", "--name", name, "--host", "127.0.0.1", "--port", String(port), "--data-dir", join(dataRoot, name), "--log-level", "warn"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  track(child, name, { sigterm: true });
  const tail = outputTail(child);
  const deadline = Date.now() + 20_000;
  while (!(await healthy(port, 500))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${name} did not come up: ${tail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ...build, port, child };
}

/** CPU time a process has used so far, in ms (Linux: utime + stime of /proc/PID/stat, 100 ticks a second). */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** One block measured by wrk (on `cpu` when given), in wrk's own numbers. */
function wrkBlock(cpu, port, path, connections, seconds) {
  const wrk = ["wrk", "-t1", `-c${connections}`, `-d${seconds}s`, "--latency", `http://127.0.0.1:${port}${path}`];
  const [cmd, ...rest] = cpu === undefined ? wrk : ["taskset", "-c", String(cpu), ...wrk];
  const r = spawnSync(cmd, rest, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const ms = (text) => {
    const [, value, unit] = /([\d.]+)(us|ms|s)\b/.exec(text ?? "") ?? [];
    return Number(value) * { us: 0.001, ms: 1, s: 1000 }[unit];
  };
  const requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1]);
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]);
  const non200 = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  const socketErrors = (/Socket errors: (.*)/.exec(r.stdout)?.[1] ?? "").match(/\d+/g)?.reduce((a, n) => a + Number(n), 0) ?? 0;
  return {
    requests,
    errors: non200 + socketErrors,
    elapsedMs: (requests / rate) * 1000,
    p50Ms: ms(/\s50%\s+(\S+)/.exec(r.stdout)?.[1]),
    p99Ms: ms(/\s99%\s+(\S+)/.exec(r.stdout)?.[1]),
  };
}

async function main() {
  const pin = wantPinning(args);
  const hasWrk = spawnSync("wrk", ["--version"]).error === undefined;
  const client = option(args, "--client") ?? (hasWrk ? "wrk" : "node");
  if (client === "wrk" && !hasWrk) throw new Error("--client wrk, but wrk is not installed (apt-get install -y wrk)");
  // The nodes share CPU 0 (only the one under load is busy); the client has CPU 1.
  const [nodeCpu, clientCpu] = pin ? [0, 1] : [undefined, undefined];
  const dataRoot = await mkdtemp(join(tmpdir(), "shoal-http-bench-"));
  atExit(() => spawnSync("rm", ["-rf", dataRoot]));
  const nodes = [];
  for (const build of builds()) nodes.push(await startNode(build, nodeCpu, dataRoot));
  const loadgen = client === "node" ? track(forkOn(clientCpu, here("./loadgen.mjs"), []), "loadgen") : undefined;
  const block = async (node, { path, connections }, seconds) => {
    const cpuBefore = cpuMs(node.child.pid);
    const r = loadgen
      ? await command(loadgen, { type: "load", port: node.port, path, connections, durationMs: seconds * 1000 })
      : wrkBlock(clientCpu, node.port, path, connections, seconds);
    return { ...r, nodeCpuMs: cpuMs(node.child.pid) - cpuBefore };
  };
  log(`client: ${client}${pin ? " (pinned: nodes on CPU 0, client on CPU 1)" : " (not pinned)"}; ${SETTINGS.blocks} blocks of ${SETTINGS.seconds} s per build and scenario`);

  const rows = [["build", "route", "conns", "req/s", "p50 ms", "p99 ms", "node CPU us/req", "non-200"]];
  const summary = [];
  for (const scenario of SCENARIOS) {
    const results = new Map(nodes.map((n) => [n, []]));
    for (const node of nodes) await block(node, scenario, SETTINGS.warmupSeconds);
    for (let b = 0; b < SETTINGS.blocks; b++) {
      const order = b % 2 === 0 ? nodes : [...nodes].reverse();
      for (const node of order) {
        const r = await block(node, scenario, SETTINGS.seconds);
        results.get(node).push(r);
        log(`${node.name} ${scenario.path} c=${scenario.connections} block ${b + 1}: ${Math.round((r.requests / r.elapsedMs) * 1000)} req/s, p50 ${r.p50Ms.toFixed(3)} ms`);
      }
    }
    const rates = new Map();
    for (const node of nodes) {
      const rs = results.get(node);
      const rate = (rs.reduce((a, r) => a + r.requests, 0) / rs.reduce((a, r) => a + r.elapsedMs, 0)) * 1000;
      rates.set(node, rate);
      const errors = rs.reduce((a, r) => a + r.errors, 0);
      const cpuPerRequest = (rs.reduce((a, r) => a + r.nodeCpuMs, 0) * 1000) / rs.reduce((a, r) => a + r.requests, 0);
      rows.push([node.name, `GET ${scenario.path}`, scenario.connections, Math.round(rate), median(rs.map((r) => r.p50Ms)).toFixed(3), median(rs.map((r) => r.p99Ms)).toFixed(3), cpuPerRequest.toFixed(1), errors]);
    }
    if (nodes.length === 2) summary.push(`GET ${scenario.path} c=${scenario.connections}: ${nodes[1].name} at ${ratio(rates.get(nodes[1]), rates.get(nodes[0]))} the baseline's rate`);
  }
  console.log(table(rows));
  for (const node of nodes) console.log(`${node.name}: ${node.commit}`);
  for (const line of summary) console.log(line);
  if (loadgen) await stop(loadgen);
  for (const node of nodes) await stop(node.child);
  await rm(dataRoot, { recursive: true, force: true });
}

runMain(main);
