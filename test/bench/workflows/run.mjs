#!/usr/bin/env node
// Workflow benchmark: what Shoal's orchestrator (@shoal/workflow) costs and carries. See README.md
// next to this file.
//
//   node test/bench/workflows/run.mjs [--cpu-prof DIR] [--heap-snapshot DIR] [--no-pin]
//
// 1. throughput of 3-step no-op workflows over HTTP: one `shoal node` process, and a mesh of three,
//    interleaved; plus the same workflows submitted in process (no HTTP) to one node.
// 2. orchestration overhead per step: a 200-step chain in one workflow next to 200 sequential
//    direct spawns of the same tool on the same remote node, interleaved, in one process.
// 3. 1,000 concurrent 5-step workflows on a fresh 3-node mesh: time to finish all, errors, peak
//    RSS of every node process.
//
// Every node is a real child process; nothing but loopback is used. Exits 0 whether or not the
// targets are met (the output is a report); exits 1 when something actually broke.
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { cpuProfiling, option } from "../lib/args.mjs";
import { atExit, childDefaults, children, command, exited, message, runMain, stop, track } from "../lib/children.mjs";
import { forkOn, spawnOn, wantPinning } from "../lib/pin.mjs";
import { freePort, getJson, outputTail, vmRssMb } from "../lib/shoal-node.mjs";
import { median } from "../lib/stats.mjs";
import { table, verdict } from "../lib/table.mjs";

const SETTINGS = {
  slots: 64, // of every node
  // 1. throughput
  submitters: 32, // concurrent closed-loop submitters (each: submit, wait for the result, again)
  throughputWarmupMs: 2_000, // per configuration, not counted
  throughputBlockMs: 2_000,
  throughputBlocks: 6, // per configuration, alternating between configurations
  inProcessBlocks: 3,
  // 2. overhead
  overheadSteps: 200,
  overheadWarmupRounds: 4,
  overheadRounds: 8, // alternating which of the two goes first
  overheadSmallSteps: 20, // the same with a short chain: shows how the cost per step grows with N
  overheadSmallRounds: 30,
  // 3. burst
  burstWorkflows: 1_000,
  burstHttpConcurrency: 64, // HTTP requests open at once, for submitting and for polling
  burstPollMs: 50, // pause between polling passes over the workflows still running
  rssEveryMs: 100,
};
const TARGETS = { overheadMs: 1, burstErrors: 0, rssMb: 300, syncedShare: 0.8 };
/**
 * The settings of the workflow store compared in part 1, each on its own 1-node process
 * (SHOAL_STORE_SYNC): `group`, the default (a 202 once its record is synced, with group
 * commit); `off`, as before (no sync: a 202 at commit); `full` (SQLite syncs every commit).
 */
const SYNC_MODES = ["group", "off", "full"];
const NODE_READY_TIMEOUT_MS = 20_000;

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const CLI = here("../../../apps/node/dist/cli.js");
const PLUGIN = here("./plugin.mjs");
const GUARD = here("./guard.mjs");

/** Three no-op steps in a chain, each fed the output of the one before. */
const CHAIN3 = {
  name: "bench-noop-chain-3",
  steps: [
    { id: "a", tool: "noop", input: { n: 1 } },
    { id: "b", tool: "noop", input: { $from: "a" } },
    { id: "c", tool: "noop", input: { $from: "b" } },
  ],
};
const STEPS_PER_CHAIN3 = CHAIN3.steps.length;

/**
 * Five steps as a diamond: s1 (a gate that holds the workflow until every workflow of the burst
 * has been submitted), then s2 s3 s4 side by side, then s5 with all three outputs; no-ops.
 */
function burstSpec(gateFile) {
  return {
    name: "bench-burst-5",
    steps: [
      { id: "s1", tool: "gate", input: { file: gateFile } },
      { id: "s2", tool: "noop", input: { n: 2, prev: { $from: "s1" } } },
      { id: "s3", tool: "noop", input: { n: 3, prev: { $from: "s1" } } },
      { id: "s4", tool: "noop", input: { n: 4, prev: { $from: "s1" } } },
      { id: "s5", tool: "noop", input: { n: 5, all: [{ $from: "s2" }, { $from: "s3" }, { $from: "s4" }] } },
    ],
  };
}

const log = (line) => console.error(`[bench] ${line}`);

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked so that none outlives the run, whatever happens. The
// `shoal node` children also carry guard.mjs, which stops them when our IPC channel closes, so
// even a SIGKILL of this process leaves nothing behind.

let tmpRoot; // data dirs of the nodes, the burst's gate
atExit(() => {
  if (tmpRoot) rmSync(tmpRoot, { recursive: true, force: true });
});
// A shoal node drains for up to --drain-grace-ms before it exits, and the burst's commands take a
// while: more time for both than ../lib/children.mjs gives by default.
Object.assign(childDefaults, { stopGraceMs: 8_000, commandTimeoutMs: 180_000 });

// ---------------------------------------------------------------------------------------------
// Where processes run. As in test/bench/transport: on Linux with `taskset` and two or more CPUs,
// the load generator and the in-process driver (the sides that measure) run on the last CPU and
// the single node they measure on CPU 0, so that the one-node numbers are "one node, one core"
// and do not depend on where the scheduler happens to put things. The 3-node meshes are not
// pinned: their point is to use every core there is. `--no-pin` turns pinning off.

let pinning = false;
let execArgv = []; // extra node flags for every child (--cpu-prof)
let heapDir; // --heap-snapshot DIR
const lastCpu = () => cpus().length - 1;

function forkScript(script, args, cpu, name) {
  return track(forkOn(pinning ? cpu : undefined, here(script), args, execArgv), name);
}

// ---------------------------------------------------------------------------------------------
// Real `shoal node` processes.

/**
 * Starts `node apps/node/dist/cli.js node ...` on a free loopback port with the benchmark's
 * plugin; resolves once GET /healthz answers. A port taken in between is retried on another.
 */
async function startShoalNode({ name, join: seeds = [], cpu, extraExecArgv = [], cwd, env, args: extraArgs = [] }) {
  for (let tries = 1; ; tries++) {
    const port = await freePort();
    const dataDir = join(tmpRoot, name);
    const args = [
      ...execArgv,
      ...extraExecArgv,
      "--import",
      GUARD,
      CLI,
      "node",
      ...["--name", name, "--host", "127.0.0.1", "--port", String(port), "--data-dir", dataDir],
      ...["--slots", String(SETTINGS.slots), "--plugin", PLUGIN, "--log-level", "warn", "--drain-grace-ms", "1000"],
      ...(seeds.length ? ["--join", seeds.join(",")] : []),
      ...extraArgs,
    ];
    const stdio = ["ignore", "pipe", "pipe", "ipc"];
    const options = { stdio, ...(cwd && { cwd }), ...(env && { env: { ...process.env, ...env } }) };
    // The node binary itself (through taskset's exec), not a wrapper: child.pid is the process
    // whose RSS we read.
    // Its IPC channel is only for guard.mjs: stop() ends it with SIGTERM.
    const child = track(spawnOn(pinning ? cpu : undefined, args, options), name, { sigterm: true });
    const output = outputTail(child);
    child.on("message", () => {}); // nothing is expected; the channel is only for guard.mjs
    const started = performance.now();
    for (;;) {
      if ((await getJson(port, "/healthz"))?.ok === true) return { name, child, port, pid: child.pid, address: `127.0.0.1:${port}` };
      if (exited(child)) {
        if (/PORT_IN_USE/.test(output()) && tries < 5) break;
        throw new Error(`shoal node ${name} exited (${child.signalCode ?? child.exitCode}) before it was ready:\n${output()}`);
      }
      if (performance.now() - started > NODE_READY_TIMEOUT_MS) throw new Error(`shoal node ${name} not ready within ${NODE_READY_TIMEOUT_MS} ms:\n${output()}`);
      await sleep(20);
    }
    log(`${name}: port ${port} was taken, trying another`);
  }
}

/** The node's workflow store counters (commits, syncs; guard.mjs reads them). */
async function storeStats(node) {
  return (await command(node.child, { type: "store" }, 10_000)).stats;
}

/** The largest event-loop delay of each node since the last ask (guard.mjs measures it). */
async function eventLoopLag(nodes) {
  return Promise.all(nodes.map(async (n) => ({ name: n.name, ...(await command(n.child, { type: "lag" }, 10_000)) })));
}

/** Waits until every node of `nodes` lists `count` members up (GET /v1/nodes). */
async function converged(nodes, count = nodes.length) {
  const end = performance.now() + NODE_READY_TIMEOUT_MS;
  for (;;) {
    const views = await Promise.all(nodes.map((n) => getJson(n.port, "/v1/nodes")));
    if (views.every((v) => v?.nodes?.filter((m) => m.status === "up").length === count)) return;
    for (const n of nodes) if (exited(n.child)) throw new Error(`shoal node ${n.name} exited while the mesh formed`);
    if (performance.now() > end) throw new Error(`mesh ${nodes.map((n) => n.name).join(", ")} did not converge within ${NODE_READY_TIMEOUT_MS} ms`);
    await sleep(50);
  }
}

/** A mesh of `n` nodes: the first is the seed, the rest join it; resolves once converged. */
async function startMesh(prefix, n, options = {}) {
  const seed = await startShoalNode({ ...options, name: `${prefix}-1` });
  const rest = await Promise.all(Array.from({ length: n - 1 }, (_, i) => startShoalNode({ ...options, name: `${prefix}-${i + 2}`, join: [seed.address] })));
  const nodes = [seed, ...rest];
  await converged(nodes);
  return nodes;
}

/** Samples VmRSS of every node every `everyMs`; stop() gives each node's peak and last value. */
function rssSampler(nodes, everyMs) {
  const peak = new Map(nodes.map((n) => [n.name, 0]));
  const last = new Map();
  const sample = () => {
    for (const n of nodes) {
      if (exited(n.child)) continue;
      try {
        const mb = vmRssMb(n.pid);
        last.set(n.name, mb);
        if (mb > peak.get(n.name)) peak.set(n.name, mb);
      } catch {
        // the process is going away; its exit is reported elsewhere
      }
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return nodes.map((n) => ({ name: n.name, peakMb: peak.get(n.name), lastMb: last.get(n.name) }));
    },
  };
}

/**
 * Asks every node for its view of the mesh (GET /v1/nodes) every `everyMs`, one request per node
 * at a time, and remembers every peer it saw not `up`: a node whose event loop stalls misses
 * heartbeats, and its peers may mark it suspect or down. stop() -> ["a saw b suspect", ...].
 */
function membershipWatcher(nodes, everyMs) {
  const seen = new Set();
  const busy = new Set();
  const look = () => {
    for (const n of nodes) {
      if (busy.has(n.name) || exited(n.child)) continue;
      busy.add(n.name);
      getJson(n.port, "/v1/nodes", 30_000).then((view) => {
        busy.delete(n.name);
        for (const m of view?.nodes ?? []) if (m.status !== "up") seen.add(`${n.name} saw ${m.name} ${m.status}`);
      });
    }
  };
  const timer = setInterval(look, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return [...seen].sort();
    },
  };
}

/** Has every node write a heap snapshot into heapDir (SIGUSR2, see --heapsnapshot-signal). */
async function heapSnapshots(nodes) {
  for (const n of nodes) {
    const before = new Set(readdirSync(heapDir));
    n.child.kill("SIGUSR2");
    const end = performance.now() + 120_000;
    // The snapshot is written on the node's main thread: once the file is there and the node
    // answers again, it is complete.
    for (;;) {
      const file = readdirSync(heapDir).find((f) => !before.has(f) && f.includes(`.${n.pid}.`) && f.endsWith(".heapsnapshot"));
      if (file && (await getJson(n.port, "/healthz", 5_000))) {
        log(`heap snapshot of ${n.name}: ${join(heapDir, file)} (${(statSync(join(heapDir, file)).size / 2 ** 20).toFixed(0)} MB)`);
        break;
      }
      if (performance.now() > end) throw new Error(`no heap snapshot from ${n.name} within 120 s`);
      await sleep(200);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Throughput.

function addTally(into, from) {
  for (const [k, v] of Object.entries(from ?? {})) into[k] = (into[k] ?? 0) + v;
}

/**
 * The one-node and the three-node configurations, both up for the whole measurement, their
 * timed blocks alternating (in alternating order): background load on a shared box then hits
 * both alike. Each block: `submitters` closed loops of POST /v1/workflows?wait=1.
 */
async function measureThroughput(loadgen, solos, mesh, localMesh) {
  const configs = [
    ...solos.map((n) => ({ key: n.name, ports: [n.port], node: n })),
    { key: "mesh", ports: mesh.map((n) => n.port) },
    { key: "meshLocal", ports: localMesh.map((n) => n.port) },
  ];
  const run = (config, durationMs) =>
    command(loadgen, { type: "closed", ports: config.ports, concurrency: SETTINGS.submitters, durationMs, spec: CHAIN3 });
  for (const config of configs) {
    const warm = await run(config, SETTINGS.throughputWarmupMs);
    if (warm.count === 0) throw new Error(`no workflow completed on ${config.key} during warm-up: ${warm.firstError}`);
  }
  const out = Object.fromEntries(configs.map((c) => [c.key, { rates: [], p50: [], p99: [], count: 0, errors: 0, resent: 0, firstError: undefined, nodesUsed: {} }]));
  // Commits and syncs of the timed blocks only, per workflow they took.
  const storeBefore = new Map();
  for (const c of configs) if (c.node) storeBefore.set(c.key, await storeStats(c.node));
  for (let block = 0; block < SETTINGS.throughputBlocks; block++) {
    for (const config of block % 2 ? [...configs].reverse() : configs) {
      const r = await run(config, SETTINGS.throughputBlockMs);
      const o = out[config.key];
      o.rates.push(r.count / r.seconds);
      o.p50.push(r.latency.p50);
      o.p99.push(r.latency.p99);
      o.count += r.count;
      o.errors += r.errors;
      o.firstError ??= r.firstError;
      o.resent += r.resent;
      addTally(o.nodesUsed, r.nodesUsed);
    }
  }
  for (const o of Object.values(out)) {
    o.rate = median(o.rates);
    o.latencyP50 = median(o.p50);
    o.latencyP99 = median(o.p99);
  }
  for (const c of configs) {
    if (!c.node) continue;
    const [before, after] = [storeBefore.get(c.key), await storeStats(c.node)];
    const o = out[c.key];
    const workflows = o.count + o.errors;
    o.syncsPerWorkflow = (after.syncs - before.syncs) / workflows;
    o.commitsPerWorkflow = (after.commits - before.commits) / workflows;
  }
  return out;
}

/** The same workflows submitted in process to one node that runs their steps itself. */
async function measureInProcess(driver, driverName) {
  const spec = { ...CHAIN3, steps: CHAIN3.steps.map((s) => ({ ...s, placement: { node: driverName } })) };
  const run = (durationMs) => command(driver, { type: "throughput", concurrency: SETTINGS.submitters, durationMs, spec });
  await run(SETTINGS.throughputWarmupMs);
  const rates = [];
  let errors = 0;
  let firstError;
  let maxLagMs = 0;
  let rssMb = 0;
  for (let block = 0; block < SETTINGS.inProcessBlocks; block++) {
    const r = await run(SETTINGS.throughputBlockMs);
    rates.push(r.count / r.seconds);
    errors += r.errors;
    firstError ??= r.firstError;
    maxLagMs = Math.max(maxLagMs, r.maxLagMs);
    rssMb = r.rssMb;
  }
  return { rate: median(rates), rates, errors, firstError, maxLagMs, rssMb };
}

// ---------------------------------------------------------------------------------------------
// 2. Overhead.

async function measureOverhead(driver, remoteName, n, rounds) {
  const r = await command(driver, { type: "overhead", remote: remoteName, steps: n, rounds, warmupRounds: SETTINGS.overheadWarmupRounds });
  const workflowMs = median(r.workflowMs);
  const directMs = median(r.directMs);
  // Per round, so that a slow moment hits both halves of the difference.
  const perRound = r.workflowMs.map((w, i) => (w - r.directMs[i]) / n);
  return { n, workflowMs, directMs, perStepWorkflow: workflowMs / n, perCallDirect: directMs / n, overhead: median(perRound), rounds: r };
}

// ---------------------------------------------------------------------------------------------
// 3. Burst.

async function measureBurst(loadgen) {
  const gateFile = join(tmpRoot, "burst-gate");
  const cwd = heapDir;
  const extraExecArgv = heapDir ? ["--heapsnapshot-signal=SIGUSR2"] : [];
  const nodes = await startMesh("burst", 3, { extraExecArgv, cwd });
  if (execArgv.length) log(`pids: ${nodes.map((n) => `${n.name} ${n.pid}`).join(", ")}`);
  try {
    await sleep(1_000); // idle first: start-up work (lazy imports, first gossip) settles
    const idle = nodes.map((n) => vmRssMb(n.pid));
    await eventLoopLag(nodes);
    const sampler = rssSampler(nodes, SETTINGS.rssEveryMs);
    const watcher = membershipWatcher(nodes, 250);
    let r;
    let rss;
    let notUp;
    try {
      r = await command(loadgen, {
        type: "burst",
        ports: nodes.map((n) => n.port),
        total: SETTINGS.burstWorkflows,
        httpConcurrency: SETTINGS.burstHttpConcurrency,
        pollIntervalMs: SETTINGS.burstPollMs,
        spec: burstSpec(gateFile),
        gateFile,
      });
    } finally {
      rss = sampler.stop();
      notUp = watcher.stop();
    }
    for (const n of nodes) if (exited(n.child)) throw new Error(`shoal node ${n.name} died during the burst`);
    const lag = await eventLoopLag(nodes);
    if (heapDir) await heapSnapshots(nodes);
    return { ...r, rss, idle, lag, notUp };
  } finally {
    await Promise.all(nodes.map((n) => stop(n.child)));
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

const fmt = (value, digits = 1) => (typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : String(value ?? "-"));

const tally = (t) =>
  Object.entries(t ?? {})
    .sort()
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");

/** Rows, notes and PASS/FAIL lines of the parts that ran. */
function report({ thr, inProc, over, burst }) {
  const s = SETTINGS;
  const rows = [["metric", "value", "detail", "target"]];
  const notes = [];
  const verdicts = [];
  const firstErrors = [];
  if (thr) {
    rows.push(
      [`1. 3-step no-op chains, ${s.submitters} submitters`, "", "", ""],
      ["   1 node, HTTP ?wait=1: workflows/s", fmt(thr.solo.rate, 0), `p50 ${fmt(thr.solo.latencyP50)} ms, p99 ${fmt(thr.solo.latencyP99)} ms`, "-"],
      ["   1 node, HTTP ?wait=1: steps/s", fmt(thr.solo.rate * STEPS_PER_CHAIN3, 0), `${thr.solo.errors} errors of ${thr.solo.count + thr.solo.errors}`, "-"],
      ["   3 nodes, HTTP round robin: workflows/s", fmt(thr.mesh.rate, 0), `p50 ${fmt(thr.mesh.latencyP50)} ms, p99 ${fmt(thr.mesh.latencyP99)} ms`, "-"],
      ["   3 nodes, HTTP round robin: steps/s", fmt(thr.mesh.rate * STEPS_PER_CHAIN3, 0), `${thr.mesh.errors} errors of ${thr.mesh.count + thr.mesh.errors}`, "-"],
      ["   what a replicated 202 costs, 3 nodes (--ack), same run", "", "", ""],
      ["     replicated (default): 202 once synced on owner and backup: workflows/s", fmt(thr.mesh.rate, 0), `p50 ${fmt(thr.mesh.latencyP50)} ms, p99 ${fmt(thr.mesh.latencyP99)} ms`, `>= ${TARGETS.syncedShare * 100}% of local`],
      ["     local (before): 202 once synced on the owner: workflows/s", fmt(thr.meshLocal.rate, 0), `p50 ${fmt(thr.meshLocal.latencyP50)} ms, p99 ${fmt(thr.meshLocal.latencyP99)} ms; ${thr.meshLocal.errors} errors`, "-"],
    );
    // Block by block, as for the store settings below.
    const replicatedShare = median(thr.mesh.rates.map((r, i) => r / thr.meshLocal.rates[i]));
    verdicts.push(
      verdict(
        "replicated 202 keeps throughput",
        replicatedShare >= TARGETS.syncedShare,
        `replicated/local per block, median ${fmt(replicatedShare * 100, 0)}% (medians: replicated ${fmt(thr.mesh.rate, 0)}/s, local ${fmt(thr.meshLocal.rate, 0)}/s), target >= ${TARGETS.syncedShare * 100}%`,
      ),
    );
    notes.push(`1: workflows/s per block, 3 nodes: replicated ${thr.mesh.rates.map((x) => fmt(x, 0)).join(" ")}; local ${thr.meshLocal.rates.map((x) => fmt(x, 0)).join(" ")}`);
    notes.push(
      `1: workflows that used each node (steps go to the least loaded): 1 node: ${tally(thr.solo.nodesUsed)}; 3 nodes: ${tally(thr.mesh.nodesUsed)}`,
      `1: workflows/s per block: 1 node ${thr.solo.rates.map((x) => fmt(x, 0)).join(" ")}; 3 nodes ${thr.mesh.rates.map((x) => fmt(x, 0)).join(" ")}`,
      `1: RSS of the 1-node process after part 1: ${fmt(thr.soloRssMb)} MB, holding ${thr.soloRetained} ended workflows (kept 1 h)`,
    );
    const modeLabel = {
      group: "group (default): 202 once synced, group commit",
      off: "off (before): 202 at commit, not synced",
      full: "full: SQLite syncs every commit",
    };
    rows.push([`   what a 202 costs, 1 node (SHOAL_STORE_SYNC), same run`, "", "", ""]);
    for (const m of thr.modes) {
      rows.push([
        `     ${modeLabel[m.mode]}: workflows/s`,
        fmt(m.rate, 0),
        `p50 ${fmt(m.latencyP50)} ms, p99 ${fmt(m.latencyP99)} ms; ${fmt(m.syncsPerWorkflow, 2)} syncs, ${fmt(m.commitsPerWorkflow, 2)} commits per workflow`,
        m.mode === "group" ? `>= ${TARGETS.syncedShare * 100}% of off` : "-",
      ]);
    }
    const off = thr.modes.find((m) => m.mode === "off");
    const group = thr.modes.find((m) => m.mode === "group");
    if (off && group) {
      // Block by block (a group block and an off block run next to each other, so a busy moment
      // of the machine hits both): steadier than the ratio of the two medians.
      const share = median(group.rates.map((r, i) => r / off.rates[i]));
      verdicts.push(
        verdict(
          "synced 202 keeps throughput",
          share >= TARGETS.syncedShare,
          `group/off per block, median ${fmt(share * 100, 0)}% (medians: group ${fmt(group.rate, 0)}/s, off ${fmt(off.rate, 0)}/s), target >= ${TARGETS.syncedShare * 100}%`,
        ),
      );
    }
    notes.push(`1: workflows/s per block, 1 node by store setting: ${thr.modes.map((m) => `${m.mode} ${m.rates.map((x) => fmt(x, 0)).join(" ")}`).join("; ")}`);
    notes.push(`1: largest event-loop delay (ms): ${thr.lag.map((l) => `${l.name} ${fmt(l.maxMs, 0)}`).join(", ")}`);
    if (thr.solo.resent + thr.mesh.resent > 0) notes.push(`1: requests resent after a keep-alive reset: 1 node ${thr.solo.resent}, 3 nodes ${thr.mesh.resent}`);
    firstErrors.push(["1 node", thr.solo], ["3 nodes", thr.mesh], ["3 nodes, --ack local", thr.meshLocal]);
  }
  if (inProc) {
    rows.push(["   1 node, in process (no HTTP): workflows/s", fmt(inProc.rate, 0), `steps/s ${fmt(inProc.rate * STEPS_PER_CHAIN3, 0)}, ${inProc.errors} errors`, "-"]);
    notes.push(
      `1: in process: workflows/s per block ${inProc.rates.map((x) => fmt(x, 0)).join(" ")}; event loop delay up to ${fmt(inProc.maxLagMs, 0)} ms; driver RSS after ${fmt(inProc.rssMb)} MB`,
    );
    firstErrors.push(["in process", inProc]);
  }
  if (over) {
    rows.push(
      [`2. ${over.n}-step chain vs ${over.n} direct spawns, remote node`, "", "", ""],
      ["   direct spawn + .done, per call (ms)", fmt(over.perCallDirect, 3), `${fmt(over.directMs, 0)} ms per ${over.n}`, "-"],
      ["   workflow, per step (ms)", fmt(over.perStepWorkflow, 3), `${fmt(over.workflowMs, 0)} ms per ${over.n}`, "-"],
      ["   orchestration overhead per step (ms)", fmt(over.overhead, 3), "median over rounds", `< ${TARGETS.overheadMs}`],
      [
        `   same with ${over.small.n} steps: overhead per step (ms)`,
        fmt(over.small.overhead, 3),
        `direct ${fmt(over.small.perCallDirect, 3)}, workflow ${fmt(over.small.perStepWorkflow, 3)} ms per step`,
        "-",
      ],
    );
    notes.push(`2: ms per round (${over.n} steps), workflow: ${over.rounds.workflowMs.map((x) => fmt(x, 0)).join(" ")}; direct: ${over.rounds.directMs.map((x) => fmt(x, 0)).join(" ")}`);
    verdicts.push(verdict("orchestration overhead per step", over.overhead < TARGETS.overheadMs, `${fmt(over.overhead, 3)} ms, target < ${TARGETS.overheadMs} ms`));
  }
  if (burst) {
    rows.push(
      [`3. ${s.burstWorkflows} x 5-step no-op workflows, all in flight, 3 nodes x ${s.slots} slots`, "", "", ""],
      ["   submit all (ms)", fmt(burst.submitMs, 0), `${fmt((burst.submitted / burst.submitMs) * 1000, 0)} workflows/s accepted, first steps held`, "-"],
      ["   time to finish all after release (ms)", fmt(burst.lastEndMs, 0), `last result read after ${fmt(burst.finishMs, 0)} ms`, "-"],
      ["   peak workflows in flight", String(burst.peakInFlight), `workflow time p50 ${fmt(burst.totalTime.p50, 0)} ms, max ${fmt(burst.totalTime.max, 0)} ms`, `${s.burstWorkflows}`],
      [
        "   not complete (errors)",
        String(burst.notComplete),
        `${burst.ended}/${burst.submitted}/${s.burstWorkflows} ended/accepted/sent, ${burst.errors} HTTP errors`,
        `${TARGETS.burstErrors}`,
      ],
      ...burst.rss.map((r, i) => [`   peak RSS ${r.name} (MB)`, fmt(r.peakMb), `idle ${fmt(burst.idle[i])} MB, after ${fmt(r.lastMb)} MB`, `< ${TARGETS.rssMb}`]),
      ["   largest event-loop delay (ms)", fmt(Math.max(...burst.lag.map((l) => l.maxMs)), 0), burst.lag.map((l) => `${l.name} ${fmt(l.maxMs, 0)}`).join(", "), "-"],
    );
    notes.push(`3: workflows that used each node: ${tally(burst.nodesUsed)}; statuses: ${JSON.stringify(burst.statuses)}`);
    notes.push(`3: peers seen not up during the burst (GET /v1/nodes every 250 ms): ${burst.notUp.length ? burst.notUp.join(", ") : "none"}`);
    if (burst.resent > 0) notes.push(`3: ${burst.resent} requests resent after the node reset an idle keep-alive connection under them (not counted as errors)`);
    firstErrors.push(["burst", burst]);
    const maxRss = Math.max(...burst.rss.map((r) => r.peakMb));
    const burstOk = burst.notComplete === 0 && burst.errors === 0 && burst.ended === s.burstWorkflows && burst.peakInFlight >= s.burstWorkflows;
    verdicts.push(
      verdict(
        `${s.burstWorkflows} concurrent workflows without errors`,
        burstOk,
        `${burst.statuses.complete ?? 0} complete, ${burst.notComplete} not complete, ${burst.errors} HTTP errors; peak ${burst.peakInFlight} in flight`,
      ),
      verdict("RSS per node under the burst", maxRss < TARGETS.rssMb, `max ${fmt(maxRss)} MB, target < ${TARGETS.rssMb} MB`),
    );
  }
  for (const [name, x] of firstErrors) if (x.firstError) notes.push(`first error (${name}): ${x.firstError}`);
  console.log(table(rows));
  console.log(`\n${notes.join("\n")}\n`);
  for (const line of verdicts) console.log(line);
}

// ---------------------------------------------------------------------------------------------

/** 1 over HTTP: a single node (pinned) and a 3-node mesh, interleaved. */
async function partThroughput(loadgen, pids) {
  log(`starting ${SYNC_MODES.length} x 1 + 2 x 3 node processes ...`);
  // One 1-node process per store setting, all on CPU 0: their blocks take turns, so each has it alone.
  const soloName = (mode) => (mode === "group" ? "solo" : `solo-${mode}`);
  // Two 3-node meshes: the default (--ack replicated) and --ack local, their blocks taking turns.
  const [solos, mesh, localMesh] = await Promise.all([
    Promise.all(SYNC_MODES.map((mode) => startShoalNode({ name: soloName(mode), cpu: 0, env: { SHOAL_STORE_SYNC: mode } }))),
    startMesh("mesh", 3),
    startMesh("local", 3, { args: ["--ack", "local"] }),
  ]);
  const solo = solos[0];
  const all = [...solos, ...mesh, ...localMesh];
  pids.push(...all.map((n) => `${n.name} ${n.pid}`));
  try {
    const configs = solos.length + 2;
    const seconds = (SETTINGS.throughputWarmupMs * configs + SETTINGS.throughputBlockMs * SETTINGS.throughputBlocks * configs) / 1000;
    log(`1. throughput, 1 node (store settings ${SYNC_MODES.join(", ")}) and 3 nodes over HTTP, interleaved (~${seconds.toFixed(0)} s) ...`);
    await eventLoopLag(all);
    const thr = await measureThroughput(loadgen, solos, mesh, localMesh);
    for (const n of all) if (exited(n.child)) throw new Error(`shoal node ${n.name} died during part 1`);
    thr.lag = await eventLoopLag(all);
    thr.soloRssMb = vmRssMb(solo.pid);
    thr.soloRetained = (await getJson(solo.port, "/v1/workflows", 30_000))?.workflows?.length;
    thr.modes = SYNC_MODES.map((mode) => ({ mode, ...thr[soloName(mode)] }));
    log(`   1 node ${thr.modes.map((m) => `${m.mode} ${fmt(m.rate, 0)}/s`).join(", ")}; 3 nodes ${fmt(thr.mesh.rate, 0)}/s (--ack local ${fmt(thr.meshLocal.rate, 0)}/s)`);
    return thr;
  } finally {
    await Promise.all(all.map((n) => stop(n.child)));
  }
}

/**
 * 2, then 1 in process. Fresh processes, so that part 1's heaps (every ended workflow is kept
 * for an hour) do not weigh on it: the driver, a node in process on the measuring CPU, and the
 * remote node that runs the steps, alone on CPU 0.
 */
async function partInProcess(parts, pids) {
  const remote = await startShoalNode({ name: "remote", cpu: 0 });
  const driverName = "driver";
  const driver = forkScript(
    "./driver.mjs",
    [JSON.stringify({ name: driverName, join: [remote.address], dataDir: join(tmpRoot, driverName), plugin: PLUGIN, slots: SETTINGS.slots })],
    lastCpu(),
    driverName,
  );
  try {
    await message(driver, "ready", NODE_READY_TIMEOUT_MS);
    pids.push(`remote ${remote.pid}`, `driver ${driver.pid}`);
    await command(driver, { type: "members", count: 2 });
    await converged([remote], 2);
    let over;
    let inProc;
    if (parts.has(2)) {
      const n = SETTINGS.overheadSteps;
      log(`2. overhead: ${n}-step chain vs ${n} direct spawns on ${remote.name}, ${SETTINGS.overheadRounds} rounds ...`);
      over = await measureOverhead(driver, remote.name, n, SETTINGS.overheadRounds);
      log(`   workflow ${fmt(over.workflowMs, 0)} ms, direct ${fmt(over.directMs, 0)} ms, overhead ${fmt(over.overhead, 3)} ms/step`);
      over.small = await measureOverhead(driver, remote.name, SETTINGS.overheadSmallSteps, SETTINGS.overheadSmallRounds);
      log(`   ${over.small.n} steps: workflow ${fmt(over.small.workflowMs, 1)} ms, direct ${fmt(over.small.directMs, 1)} ms, overhead ${fmt(over.small.overhead, 3)} ms/step`);
    }
    if (parts.has(1)) {
      log("1. throughput, 1 node in process (after 2: it fills the driver's heap) ...");
      inProc = await measureInProcess(driver, driverName);
      log(`   in process ${fmt(inProc.rate, 0)}/s`);
    }
    return { over, inProc };
  } finally {
    await stop(driver);
    await stop(remote.child);
  }
}

async function partBurst(loadgen) {
  log(`3. burst: ${SETTINGS.burstWorkflows} workflows on a fresh 3-node mesh ...`);
  const b = await measureBurst(loadgen);
  b.notComplete = SETTINGS.burstWorkflows - (b.statuses.complete ?? 0);
  log(`   submitted in ${fmt(b.submitMs, 0)} ms, all ended ${fmt(b.lastEndMs, 0)} ms after the release, peak RSS ${b.rss.map((r) => fmt(r.peakMb)).join(" / ")} MB`);
  return b;
}

async function main() {
  const args = process.argv.slice(2);
  // CPU profiles of every child (nodes, load generator, driver), for finding where the time
  // goes (open in Chrome devtools or speedscope). Profiling slows everything: do not read the
  // table then.
  const profiling = await cpuProfiling(args);
  if (profiling) {
    execArgv = profiling.execArgv;
    log(`writing CPU profiles to ${profiling.dir} (file names carry the pid; the pids are listed below)`);
  }
  const heap = option(args, "--heap-snapshot");
  if (heap !== undefined) {
    heapDir = resolve(heap || "bench-heap");
    await mkdir(heapDir, { recursive: true });
    log(`writing heap snapshots of the burst nodes to ${heapDir}, after the burst`);
  }
  const only = option(args, "--only");
  const parts = new Set((only ?? "1,2,3").split(",").map(Number));
  if (parts.size === 0 || [...parts].some((p) => ![1, 2, 3].includes(p))) throw new Error(`--only takes parts 1, 2, 3 separated by commas, not "${only}"`);
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing; build first (pnpm exec turbo run build)`);
  pinning = wantPinning(args);
  log(`node ${process.version}, ${cpus().length} cpus, ${pinning ? `1-node side pinned to cpu 0, load generator and driver to cpu ${lastCpu()}, 3-node meshes not pinned` : "not pinned"}`);
  log(JSON.stringify(SETTINGS));
  tmpRoot = await mkdtemp(join(tmpdir(), "shoal-bench-wf-"));
  const pids = [];
  try {
    const loadgen = forkScript("./loadgen.mjs", [], lastCpu(), "loadgen");
    await message(loadgen, "ready", 15_000);
    pids.push(`loadgen ${loadgen.pid}`);
    const results = {};
    if (parts.has(1)) results.thr = await partThroughput(loadgen, pids);
    if (parts.has(1) || parts.has(2)) Object.assign(results, await partInProcess(parts, pids));
    if (parts.has(3)) results.burst = await partBurst(loadgen);
    await stop(loadgen);
    if (execArgv.length) log(`pids: ${pids.join(", ")}`);
    console.log("");
    report(results);
  } finally {
    await Promise.all([...children].map((c) => stop(c)));
    await rm(tmpRoot, { recursive: true, force: true });
  }
}

runMain(main);
