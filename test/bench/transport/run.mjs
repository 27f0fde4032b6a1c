#!/usr/bin/env node
// Transport benchmark: Shoal's @shoal/transport against a bare ws + msgpackr baseline, plus the
// idle memory and start-up time of a real `shoal node`. See README.md next to this file.
//
//   node test/bench/transport/run.mjs [--cpu-prof DIR]
//
// Every stack runs as two child processes (server.mjs, client.mjs) so that client and server do
// not share an event loop, as two nodes would not. Exits 0 whether or not targets are met (the
// output is a report); exits 1 when something actually broke.
import { fork, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { get } from "node:http";
import { createServer } from "node:net";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

const SETTINGS = {
  warmup: 500, // sequential requests before timing starts
  samples: 5_000, // timed sequential requests
  inFlight: 256, // requests outstanding during the throughput run
  throughputWarmup: 20_000,
  throughputTotal: 100_000,
};
const ROUNDS = 3; // of each transport measurement; the table shows the median
const NODE_RUNS = 3;
const NODE_IDLE_MS = 2_000;
const NODE_READY_TIMEOUT_MS = 20_000;
const TARGETS = { p50Ratio: 1.3, throughputRatio: 0.7, idleRssMb: 80 };

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const CLI = here("../../../apps/node/dist/cli.js");

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked so that none outlives the run, whatever happens.

const children = new Set();

function track(child) {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

function killAll() {
  for (const child of children) child.kill("SIGKILL");
}
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

const exited = (child) => child.exitCode !== null || child.signalCode !== null;

/**
 * Asks a child to stop (an IPC "stop" to our workers, SIGTERM to a shoal node) and waits for it
 * to exit; SIGKILL after `graceMs`. Resolves to true when it exited on its own.
 */
async function stop(child, graceMs = 5_000) {
  if (exited(child)) return true;
  const gone = new Promise((resolve) => child.once("exit", resolve));
  if (child.connected) child.send({ type: "stop" });
  else child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  const [, signal] = await gone.then(() => [child.exitCode, child.signalCode]);
  clearTimeout(timer);
  return signal !== "SIGKILL";
}

/** The next IPC message of `type` from a worker; rejects on its error message, exit or timeout. */
function message(child, type, timeoutMs) {
  return new Promise((resolve, reject) => {
    const done = (fn, value) => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      fn(value);
    };
    const onMessage = (msg) => {
      if (msg?.type === type) done(resolve, msg);
      else if (msg?.type === "error") done(reject, new Error(msg.message));
    };
    const onExit = (code, signal) => done(reject, new Error(`${child.spawnargs.slice(-3).join(" ")} exited (${signal ?? code}) before sending "${type}"`));
    const timer = setTimeout(() => done(reject, new Error(`no "${type}" from ${child.spawnargs.join(" ")} within ${timeoutMs} ms`)), timeoutMs);
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

// ---------------------------------------------------------------------------------------------
// 1 and 2: the two transports.

/** Runs one stack's server and client in their own processes; returns the client's results. */
async function measureTransport(kind, execArgv) {
  const server = track(fork(here("./server.mjs"), [kind], { execArgv }));
  try {
    const { port } = await message(server, "ready", 15_000);
    const client = track(fork(here("./client.mjs"), [kind, String(port), JSON.stringify(SETTINGS)], { execArgv }));
    try {
      return await message(client, "result", 60_000);
    } finally {
      await stop(client);
    }
  } finally {
    await stop(server);
  }
}

// ---------------------------------------------------------------------------------------------
// 3: a real `shoal node`, idle.

/** A port nobody listens on right now (the kernel's pick; another process could take it first). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** True when GET /healthz answers 200 with `"ok": true`; false while the node is not up yet. */
function healthy(port) {
  return new Promise((resolve) => {
    // agent: false: a fresh connection per poll, so no keep-alive socket is left on the node.
    const req = get({ host: "127.0.0.1", port, path: "/healthz", agent: false, timeout: 1_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => {
        try {
          resolve(res.statusCode === 200 && JSON.parse(body).ok === true);
        } catch {
          resolve(false);
        }
      });
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
  });
}

function vmRssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]);
  if (!Number.isFinite(kb)) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return kb / 1024;
}

async function nodeOnce() {
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), "shoal-bench-"));
  const args = [CLI, "node", "--name", "bench-idle", "--host", "127.0.0.1", "--port", String(port), "--data-dir", dataDir, "--log-level", "warn"];
  const started = performance.now();
  // The node binary itself, not a pnpm wrapper: child.pid is then the process whose RSS we read.
  const child = track(spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] }));
  let output = "";
  const keep = (chunk) => (output = (output + chunk).slice(-4_000)); // also drains the pipes
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  try {
    while (!(await healthy(port))) {
      if (exited(child)) throw new Error(`shoal node exited (${child.signalCode ?? child.exitCode}) before it was ready:\n${output.trim()}`);
      if (performance.now() - started > NODE_READY_TIMEOUT_MS) throw new Error(`shoal node not ready within ${NODE_READY_TIMEOUT_MS} ms:\n${output.trim()}`);
      await sleep(10);
    }
    const readyMs = performance.now() - started;
    // Idle means after start-up work (timers, first gossip rounds, lazy imports) has settled.
    await sleep(NODE_IDLE_MS);
    if (exited(child)) throw new Error(`shoal node exited while idle:\n${output.trim()}`);
    const rssMb = vmRssMb(child.pid);
    const clean = await stop(child, 5_000);
    return { readyMs, rssMb, clean };
  } finally {
    await stop(child, 5_000);
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function measureNode() {
  if (!existsSync(CLI)) return { skipped: "apps/node not built" };
  const runs = [];
  for (let i = 0; i < NODE_RUNS; i++) runs.push(await nodeOnce());
  return {
    readyMs: median(runs.map((r) => r.readyMs)),
    rssMb: median(runs.map((r) => r.rssMb)),
    runs,
  };
}

// ---------------------------------------------------------------------------------------------
// Report.

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median of each metric over the rounds of one stack. */
function summarize(rounds) {
  return {
    roundTrip: { p50: median(rounds.map((r) => r.roundTrip.p50)), p99: median(rounds.map((r) => r.roundTrip.p99)) },
    throughput: median(rounds.map((r) => r.throughput)),
  };
}

const fmt = (value, digits = 1) => (typeof value === "number" ? value.toFixed(digits) : value);
const ratio = (a, b, digits = 2) => `${(a / b).toFixed(digits)}x`;

function table(rows) {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => String(row[col]).length)));
  return rows.map((row) => row.map((cell, col) => String(cell).padEnd(widths[col] + 3)).join("").trimEnd()).join("\n");
}

function report(shoal, raw, node) {
  const rows = [
    ["metric", "shoal", "raw ws+msgpackr", "ratio", "target"],
    ["round trip p50 (us)", fmt(shoal.roundTrip.p50), fmt(raw.roundTrip.p50), ratio(shoal.roundTrip.p50, raw.roundTrip.p50), `<= ${TARGETS.p50Ratio}x`],
    ["round trip p99 (us)", fmt(shoal.roundTrip.p99), fmt(raw.roundTrip.p99), ratio(shoal.roundTrip.p99, raw.roundTrip.p99), "-"],
    [`throughput, ${SETTINGS.inFlight} in flight (/s)`, fmt(shoal.throughput, 0), fmt(raw.throughput, 0), ratio(shoal.throughput, raw.throughput), `>= ${TARGETS.throughputRatio.toFixed(2)}x`],
  ];
  const verdicts = [
    verdict("round trip p50", shoal.roundTrip.p50 / raw.roundTrip.p50 <= TARGETS.p50Ratio, `${ratio(shoal.roundTrip.p50, raw.roundTrip.p50, 3)}, target <= ${TARGETS.p50Ratio}x`),
    verdict("throughput", shoal.throughput / raw.throughput >= TARGETS.throughputRatio, `${ratio(shoal.throughput, raw.throughput, 3)}, target >= ${TARGETS.throughputRatio.toFixed(2)}x`),
  ];
  if (node.skipped || node.error) {
    const why = node.skipped ? `skipped: ${node.skipped}` : "error (see above)";
    rows.push(["idle node RSS (MB)", why, "-", "-", `< ${TARGETS.idleRssMb}`], ["node start-to-ready (ms)", why, "-", "-", "-"]);
    verdicts.push(`${node.skipped ? "SKIP" : "FAIL"}  idle node RSS: ${why}`);
  } else {
    rows.push(
      ["idle node RSS (MB)", fmt(node.rssMb), "-", "-", `< ${TARGETS.idleRssMb}`],
      ["node start-to-ready (ms)", fmt(node.readyMs, 0), "-", "-", "-"],
    );
    verdicts.push(verdict("idle node RSS", node.rssMb < TARGETS.idleRssMb, `${fmt(node.rssMb)} MB, target < ${TARGETS.idleRssMb} MB`));
  }
  console.log(table(rows));
  if (node.runs) {
    const each = node.runs.map((r) => `${fmt(r.rssMb)} MB / ${fmt(r.readyMs, 0)} ms${r.clean ? "" : " (needed SIGKILL)"}`);
    console.log(`\nshoal node runs (RSS / start-to-ready, median above): ${each.join(", ")}`);
  }
  console.log("");
  for (const line of verdicts) console.log(line);
}

function verdict(name, ok, detail) {
  return `${ok ? "PASS" : "FAIL"}  ${name}: ${detail}`;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const args = process.argv.slice(2);
  let execArgv = [];
  const profIndex = args.indexOf("--cpu-prof");
  if (profIndex >= 0) {
    // CPU profiles of every transport worker, for finding where the time goes (open in Chrome
    // devtools or speedscope). Profiling slows everything down: do not read the table then.
    const dir = resolve(args[profIndex + 1] ?? "bench-profiles");
    await mkdir(dir, { recursive: true });
    execArgv = ["--cpu-prof", `--cpu-prof-dir=${dir}`];
    console.error(`writing CPU profiles to ${dir}`);
  }
  const log = (line) => console.error(`[bench] ${line}`);
  log(`node ${process.version}, ${ROUNDS} rounds, ${cpus().length} cpus, ${JSON.stringify(SETTINGS)}`);

  // Loopback numbers on a small shared box swing by tens of percent from one run to the next
  // (other processes, CPU frequency, GC timing). So each stack runs ROUNDS times, interleaved
  // and in alternating order so neither always goes first, and the table shows the medians.
  const results = { raw: [], shoal: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const kind of round % 2 ? ["raw", "shoal"] : ["shoal", "raw"]) {
      const r = await measureTransport(kind, execArgv);
      log(`round ${round} ${kind.padEnd(5)}: p50 ${fmt(r.roundTrip.p50)} us, p99 ${fmt(r.roundTrip.p99)} us, ${fmt(r.throughput, 0)} req/s`);
      results[kind].push(r);
    }
  }
  const raw = summarize(results.raw);
  const shoal = summarize(results.shoal);

  log(existsSync(CLI) ? `shoal node idle, ${NODE_RUNS} runs ...` : "shoal node: skipped, apps/node not built");
  let node;
  try {
    node = await measureNode();
  } catch (err) {
    // Still print the transport numbers, but this is a real failure: exit non-zero below.
    console.error(`shoal node measurement failed: ${err.message}`);
    node = { error: err };
  }

  console.log("");
  report(shoal, raw, node);
  if (node.error) process.exitCode = 1;
}

main().catch((err) => {
  console.error(`bench failed: ${err.stack ?? err}`);
  process.exitCode = 1;
}).finally(killAll);
