#!/usr/bin/env node
// Transport benchmark: Shoal's @shoal/transport against a bare ws + msgpackr baseline, plus the
// idle memory and start-up time of a real `shoal node`. See README.md next to this file.
//
//   node test/bench/transport/run.mjs [--cpu-prof DIR] [--no-pin]
//
// Every stack runs as two child processes (server.mjs, client.mjs) so that client and server do
// not share an event loop, as two nodes would not. Exits 0 whether or not targets are met (the
// output is a report); exits 1 when something actually broke.
import { fork, spawn, spawnSync } from "node:child_process";
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
  sequentialBlocks: 10, // the timed work of each stack is cut into blocks, alternating stacks
  throughputBlocks: 10,
};
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
  await gone;
  clearTimeout(timer);
  return child.signalCode !== "SIGKILL";
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

/**
 * Where the workers run. Loopback round trips are bimodal: ~30 us when server and client share a
 * CPU (the wake-up is a plain context switch), ~80 us when they sit on two CPUs (a cross-CPU
 * wake-up of an idle core). Left to the scheduler, one stack can land in one mode and the other
 * stack in the other, and the ratio then measures the scheduler. So on Linux with `taskset` and
 * at least two CPUs every server runs on CPU 0 and every client on CPU 1: both stacks in the same
 * mode, and each process has a core to itself, as two nodes would. `--no-pin` turns this off.
 */
let pinning = false;

function canPin() {
  return process.platform === "linux" && cpus().length >= 2 && spawnSync("taskset", ["-c", "0", process.execPath, "-e", "0"]).status === 0;
}

function forkWorker(script, args, execArgv, cpu) {
  const path = here(script);
  // taskset sets the affinity and execs node in place: the pid and the IPC channel stay the same.
  if (pinning) return track(fork(path, args, { execPath: "taskset", execArgv: ["-c", String(cpu), process.execPath, ...execArgv] }));
  return track(fork(path, args, { execArgv }));
}

/** Every stack started, for stopping them: { kind, server, client }. */
const stacks = [];

/** A stack's server and client, each in a process of its own, connected and ready for commands. */
async function startStack(kind, execArgv) {
  const server = forkWorker("./server.mjs", [kind], execArgv, 0);
  const stack = { kind, server, client: undefined };
  stacks.push(stack);
  const { port } = await message(server, "ready", 15_000);
  stack.client = forkWorker("./client.mjs", [kind, String(port)], execArgv, 1);
  await message(stack.client, "ready", 15_000);
  return stack;
}

async function stopStacks() {
  // Clients first, so that servers do not see their peers vanish mid-request.
  await Promise.all(stacks.map((s) => s.client && stop(s.client)));
  await Promise.all(stacks.map((s) => stop(s.server)));
}

/** Sends a command to a client worker and waits for its answer (same type). */
function ask(stack, command) {
  const answer = message(stack.client, command.type, 120_000);
  stack.client.send(command);
  return answer;
}

/**
 * Measures both stacks. All four processes stay up for the whole run, and the timed work is cut
 * into blocks that alternate between the stacks (in alternating order). On a small shared box the
 * background load changes from second to second; this way both stacks see the same load and the
 * ratios stay meaningful even when the absolute numbers move.
 */
async function measureTransports(execArgv) {
  const raw = await startStack("raw", execArgv);
  const shoal = await startStack("shoal", execArgv);
  const both = [raw, shoal];
  const inTurn = (block) => (block % 2 ? [shoal, raw] : [raw, shoal]);

  // Warm-up: the first requests run in V8's interpreter, allocate the codec's buffers and grow the
  // sockets'; timing them would measure start-up, not the steady state that a busy node lives in.
  // The pipelined warm-up lets the JIT also see the many-in-flight paths (queued sends, many
  // pending timers) before they are timed.
  for (const stack of both) {
    await ask(stack, { type: "sequential", count: SETTINGS.warmup });
    await ask(stack, { type: "pipelined", count: SETTINGS.throughputWarmup, inFlight: SETTINGS.inFlight });
  }

  const samples = { raw: [], shoal: [] };
  for (let block = 0; block < SETTINGS.sequentialBlocks; block++) {
    for (const stack of inTurn(block)) {
      const answer = await ask(stack, { type: "sequential", count: SETTINGS.samples / SETTINGS.sequentialBlocks });
      samples[stack.kind].push(...answer.samples);
    }
  }

  // Each block is timed on its own and the table shows the median block rate: a burst of
  // background load then spoils one block of one stack, not the whole result. Between blocks the
  // window drains and refills once; next to 10k requests a block that is noise.
  const rates = { raw: [], shoal: [] };
  for (let block = 0; block < SETTINGS.throughputBlocks; block++) {
    for (const stack of inTurn(block)) {
      const count = SETTINGS.throughputTotal / SETTINGS.throughputBlocks;
      const answer = await ask(stack, { type: "pipelined", count, inFlight: SETTINGS.inFlight });
      rates[stack.kind].push(answer.count / answer.seconds);
    }
  }

  await stopStacks();
  const summary = (kind) => {
    const sorted = samples[kind].sort((a, b) => a - b);
    return {
      roundTrip: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), n: sorted.length },
      throughput: median(rates[kind]),
      rates: rates[kind],
    };
  };
  return { raw: summary("raw"), shoal: summary("shoal") };
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
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
  const notes = [];
  if (node.skipped || node.error) {
    const cell = node.skipped ? "skipped" : "error";
    rows.push(["idle node RSS (MB)", cell, "-", "-", `< ${TARGETS.idleRssMb}`], ["node start-to-ready (ms)", cell, "-", "-", "-"]);
    notes.push(node.skipped ? `shoal node: skipped, ${node.skipped}` : `shoal node: failed, ${node.error.message.split("\n")[0].replace(/:$/, "")} (details above)`);
    verdicts.push(`${node.skipped ? "SKIP" : "FAIL"}  idle node RSS: ${node.skipped ?? "the node did not run (see above)"}`);
  } else {
    rows.push(
      ["idle node RSS (MB)", fmt(node.rssMb), "-", "-", `< ${TARGETS.idleRssMb}`],
      ["node start-to-ready (ms)", fmt(node.readyMs, 0), "-", "-", "-"],
    );
    verdicts.push(verdict("idle node RSS", node.rssMb < TARGETS.idleRssMb, `${fmt(node.rssMb)} MB, target < ${TARGETS.idleRssMb} MB`));
  }
  if (node.runs) {
    const each = node.runs.map((r) => `${fmt(r.rssMb)} MB / ${fmt(r.readyMs, 0)} ms${r.clean ? "" : " (needed SIGKILL)"}`);
    notes.push(`shoal node runs (RSS / start-to-ready, median above): ${each.join(", ")}`);
  }
  console.log(table(rows));
  console.log(`\n${notes.join("\n")}${notes.length ? "\n" : ""}`);
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
  pinning = !args.includes("--no-pin") && canPin();
  const log = (line) => console.error(`[bench] ${line}`);
  log(`node ${process.version}, ${cpus().length} cpus, ${pinning ? "servers pinned to cpu 0, clients to cpu 1" : "not pinned"}`);
  log(JSON.stringify(SETTINGS));

  log("raw ws+msgpackr and shoal transport, interleaved ...");
  const { raw, shoal } = await measureTransports(execArgv);
  for (const [kind, r] of Object.entries({ raw, shoal })) {
    log(`${kind.padEnd(5)}: p50 ${fmt(r.roundTrip.p50)} us, p99 ${fmt(r.roundTrip.p99)} us (n=${r.roundTrip.n}); req/s per block: ${r.rates.map((x) => fmt(x, 0)).join(" ")}`);
  }

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
