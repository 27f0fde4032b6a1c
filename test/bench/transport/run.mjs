#!/usr/bin/env node
// Transport benchmark: Shoal's @shoal/transport against a bare ws + msgpackr baseline, the same
// transport over wss with mutual TLS, plus the idle memory and start-up time of a real
// `shoal node`. See README.md next to this file.
//
//   node test/bench/transport/run.mjs [--cpu-prof DIR] [--no-pin]
//
// Every stack runs as two child processes (server.mjs, client.mjs) so that client and server do
// not share an event loop, as two nodes would not. Exits 0 whether or not targets are met (the
// output is a report); exits 1 when something actually broke.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { cpuProfiling } from "../lib/args.mjs";
import { exited, message, runMain, stop, track } from "../lib/children.mjs";
import { forkOn, spawnOn, wantPinning } from "../lib/pin.mjs";
import { freePort, healthy, outputTail, vmRssMb } from "../lib/shoal-node.mjs";
import { median, percentile } from "../lib/stats.mjs";
import { ratio, table, verdict } from "../lib/table.mjs";

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
/** The stacks measured side by side: the floor, Shoal's transport on ws, and on wss with mutual TLS. */
const KINDS = ["raw", "shoal", "shoal-tls"];

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const CLI = here("../../../apps/node/dist/cli.js");

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

function forkWorker(script, args, execArgv, cpu) {
  return track(forkOn(pinning ? cpu : undefined, here(script), args, execArgv), `${script.slice(2)} ${args.join(" ")}`);
}

/** Every stack started, for stopping them: { kind, server, client }. */
const stacks = [];

/** A stack's server and client, each in a process of its own, connected and ready for commands. */
async function startStack(kind, execArgv, pkiDir) {
  const server = forkWorker("./server.mjs", [kind, pkiDir], execArgv, 0);
  const stack = { kind, server, client: undefined };
  stacks.push(stack);
  const { port } = await message(server, "ready", 15_000);
  stack.client = forkWorker("./client.mjs", [kind, String(port), pkiDir], execArgv, 1);
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
 * A cluster CA and a certificate for each end of the TLS stack, made as `shoal ca init` and
 * `shoal cert issue` make them (same code, same key type): pkiDir/<name>/{ca.crt,node.crt,node.key}.
 */
async function makePki() {
  const { createCa, issueCertificate } = await import(new URL("../../../packages/transport/dist/certificates.js", import.meta.url).href);
  const dir = await mkdtemp(join(tmpdir(), "shoal-bench-pki-"));
  await createCa(join(dir, "ca"));
  for (const name of ["bench-server", "bench-client"]) {
    await issueCertificate({ caDir: join(dir, "ca"), name, hosts: ["127.0.0.1"], outDir: join(dir, name) });
  }
  return dir;
}

/**
 * Measures every stack. All the processes stay up for the whole run, and the timed work is cut
 * into blocks that rotate between the stacks (each block starts with the next stack). On a small
 * shared box the background load changes from second to second; this way every stack sees the
 * same load and the ratios stay meaningful even when the absolute numbers move.
 */
async function measureTransports(execArgv, pkiDir) {
  const all = [];
  for (const kind of KINDS) all.push(await startStack(kind, execArgv, pkiDir));
  const inTurn = (block) => all.map((_, i) => all[(i + block) % all.length]);

  // Warm-up: the first requests run in V8's interpreter, allocate the codec's buffers and grow the
  // sockets'; timing them would measure start-up, not the steady state that a busy node lives in.
  // The pipelined warm-up lets the JIT also see the many-in-flight paths (queued sends, many
  // pending timers) before they are timed.
  for (const stack of all) {
    await ask(stack, { type: "sequential", count: SETTINGS.warmup });
    await ask(stack, { type: "pipelined", count: SETTINGS.throughputWarmup, inFlight: SETTINGS.inFlight });
  }

  const samples = Object.fromEntries(KINDS.map((k) => [k, []]));
  for (let block = 0; block < SETTINGS.sequentialBlocks; block++) {
    for (const stack of inTurn(block)) {
      const answer = await ask(stack, { type: "sequential", count: SETTINGS.samples / SETTINGS.sequentialBlocks });
      samples[stack.kind].push(...answer.samples);
    }
  }

  // Each block is timed on its own and the table shows the median block rate: a burst of
  // background load then spoils one block of one stack, not the whole result. Between blocks the
  // window drains and refills once; next to 10k requests a block that is noise.
  const rates = Object.fromEntries(KINDS.map((k) => [k, []]));
  for (let block = 0; block < SETTINGS.throughputBlocks; block++) {
    for (const stack of inTurn(block)) {
      const count = SETTINGS.throughputTotal / SETTINGS.throughputBlocks;
      const answer = await ask(stack, { type: "pipelined", count, inFlight: SETTINGS.inFlight });
      rates[stack.kind].push(answer.count / answer.seconds);
    }
  }

  await stopStacks();
  const summary = (kind) => {
    const all = samples[kind];
    return {
      roundTrip: { p50: percentile(all, 0.5), p99: percentile(all, 0.99), n: all.length },
      throughput: median(rates[kind]),
      rates: rates[kind],
    };
  };
  return Object.fromEntries(KINDS.map((k) => [k, summary(k)]));
}

// ---------------------------------------------------------------------------------------------
// 3: a real `shoal node`, idle.

async function nodeOnce() {
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), "shoal-bench-"));
  const args = [CLI, "node", "--name", "bench-idle", "--host", "127.0.0.1", "--port", String(port), "--data-dir", dataDir, "--log-level", "warn"];
  const started = performance.now();
  // The node binary itself, not a pnpm wrapper: child.pid is then the process whose RSS we read.
  const child = track(spawnOn(undefined, args, { stdio: ["ignore", "pipe", "pipe"] }), "shoal node");
  const output = outputTail(child);
  try {
    while (!(await healthy(port))) {
      if (exited(child)) throw new Error(`shoal node exited (${child.signalCode ?? child.exitCode}) before it was ready:\n${output()}`);
      if (performance.now() - started > NODE_READY_TIMEOUT_MS) throw new Error(`shoal node not ready within ${NODE_READY_TIMEOUT_MS} ms:\n${output()}`);
      await sleep(10);
    }
    const readyMs = performance.now() - started;
    // Idle means after start-up work (timers, first gossip rounds, lazy imports) has settled.
    await sleep(NODE_IDLE_MS);
    if (exited(child)) throw new Error(`shoal node exited while idle:\n${output()}`);
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

const fmt = (value, digits = 1) => (typeof value === "number" ? value.toFixed(digits) : value);
function report({ raw, shoal, "shoal-tls": tls }, node) {
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
  // What mutual TLS adds to the same transport: no target, the issue asks for the figure.
  const tlsRows = [
    ["TLS cost (shoal transport)", "ws", "wss + mutual TLS", "wss / ws"],
    ["round trip p50 (us)", fmt(shoal.roundTrip.p50), fmt(tls.roundTrip.p50), ratio(tls.roundTrip.p50, shoal.roundTrip.p50)],
    ["round trip p99 (us)", fmt(shoal.roundTrip.p99), fmt(tls.roundTrip.p99), ratio(tls.roundTrip.p99, shoal.roundTrip.p99)],
    [`throughput, ${SETTINGS.inFlight} in flight (/s)`, fmt(shoal.throughput, 0), fmt(tls.throughput, 0), ratio(tls.throughput, shoal.throughput)],
  ];
  console.log(table(rows));
  console.log(`\n${table(tlsRows)}`);
  console.log(`\n${notes.join("\n")}${notes.length ? "\n" : ""}`);
  for (const line of verdicts) console.log(line);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const args = process.argv.slice(2);
  // CPU profiles of every transport worker, for finding where the time goes (open in Chrome
  // devtools or speedscope). Profiling slows everything down: do not read the table then.
  const profiling = await cpuProfiling(args);
  const execArgv = profiling?.execArgv ?? [];
  if (profiling) console.error(`writing CPU profiles to ${profiling.dir}`);
  pinning = wantPinning(args);
  const log = (line) => console.error(`[bench] ${line}`);
  log(`node ${process.version}, ${cpus().length} cpus, ${pinning ? "servers pinned to cpu 0, clients to cpu 1" : "not pinned"}`);
  log(JSON.stringify(SETTINGS));

  log(`${KINDS.join(", ")}, interleaved ...`);
  const pkiDir = await makePki();
  let transports;
  try {
    transports = await measureTransports(execArgv, pkiDir);
  } finally {
    await rm(pkiDir, { recursive: true, force: true });
  }
  for (const [kind, r] of Object.entries(transports)) {
    log(`${kind.padEnd(9)}: p50 ${fmt(r.roundTrip.p50)} us, p99 ${fmt(r.roundTrip.p99)} us (n=${r.roundTrip.n}); req/s per block: ${r.rates.map((x) => fmt(x, 0)).join(" ")}`);
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
  report(transports, node);
  if (node.error) process.exitCode = 1;
}

runMain(main);
