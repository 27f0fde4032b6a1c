#!/usr/bin/env node
// Actor benchmark: what Shoal's runtime (@shoal/runtime) costs on top of its transport. See
// README.md next to this file.
//
//   node test/bench/actors/run.mjs [--cpu-prof DIR] [--heap-snapshot DIR] [--no-pin]
//
// Every node is a child process (worker.mjs) that assembles Transport + Mesh + Runtime in process
// and takes commands over IPC; all timing happens inside the workers. Exits 0 whether or not the
// targets are met (the output is a report); exits 1 when something actually broke.
import { cpus } from "node:os";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cpuProfiling } from "../lib/args.mjs";
import { command, kill, message, runMain, stop, track } from "../lib/children.mjs";
import { forkOn, wantPinning } from "../lib/pin.mjs";
import { median, percentile } from "../lib/stats.mjs";
import { ratio, table, verdict } from "../lib/table.mjs";
import { DEFAULT_DETECTOR, FAST_DETECTOR } from "./node.mjs";

const SETTINGS = {
  askWarmup: 2_000, // sequential asks of each kind before timing starts
  askSamples: 10_000, // timed asks of each kind
  askBlocks: 10, // cut into blocks that alternate between the three kinds
  hostSlots: 16, // slots of each of the two hosts in the spawn benchmark
  spawnInFlight: 256,
  spawnWarmup: 2_000,
  spawnTotal: 10_000,
  spawnBlocks: 5,
  failoverRepeats: 3,
  failoverAskEveryMs: 5,
  heapActors: 10_000,
};
const DETECTORS = { default: DEFAULT_DETECTOR, fast: FAST_DETECTOR };
const TARGETS = { askRatio: 1.5, failoverSlackMs: 200, heapKb: 12 };

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

// ---------------------------------------------------------------------------------------------
// Where the workers run. Loopback round trips are bimodal: a wake-up on the same CPU is a plain
// context switch, a wake-up of an idle other CPU costs more. Left to the scheduler, the three
// kinds of round trip could land in different modes. So on Linux with `taskset` and at least two
// CPUs, the node that measures (the client/spawner/supervisor) runs on CPU 1 and the nodes it
// talks to on CPU 0, as in test/bench/transport. `--no-pin` turns this off. Every child is
// tracked (../lib/children.mjs) so that none outlives the run; SIGKILL at the end also ends a
// host that a failover run left stopped (SIGSTOP).

let pinning = false;
let execArgv = [];

function forkScript(script, args, extraExecArgv, cpu, name) {
  return track(forkOn(pinning ? cpu : undefined, here(script), args, [...execArgv, ...extraExecArgv]), name);
}

/** A runtime node in a worker process, listening and ready for commands. */
async function startNode(config, cpu) {
  const child = forkScript("./worker.mjs", [JSON.stringify(config)], [], cpu, config.name);
  const ready = await message(child, "ready", 20_000);
  return { name: config.name, child, address: ready.address, id: ready.id, pid: ready.pid };
}

/**
 * A mesh: the first node is the seed (and the one that measures, on CPU 1); the others join it
 * (on CPU 0). Resolves once every node sees every node up.
 */
async function startCluster(configs) {
  const [first, ...rest] = configs;
  const seed = await startNode({ ...first, seeds: [] }, 1);
  const nodes = [seed];
  try {
    nodes.push(...(await Promise.all(rest.map((c) => startNode({ ...c, seeds: [seed.address] }, 0)))));
    await Promise.all(nodes.map((n) => command(n.child, { type: "converge", count: nodes.length }, 20_000)));
  } catch (err) {
    await Promise.all(nodes.map((n) => kill(n.child)));
    throw err;
  }
  return nodes;
}

async function stopCluster(nodes) {
  // The measuring node first, so that the others do not see it vanish mid-request.
  await stop(nodes[0].child);
  await Promise.all(nodes.slice(1).map((n) => stop(n.child)));
}

// ---------------------------------------------------------------------------------------------
// 1. ask round trips: remote actor, local actor, bare transport request, interleaved.

const ASK_MODES = ["remote", "local", "transport"];
const PARTS = ["ask", "spawn", "failover", "heap"];

async function measureAsk(log) {
  const nodes = await startCluster([
    { name: "a", slots: 4, ...DEFAULT_DETECTOR },
    { name: "b", slots: 4, ...DEFAULT_DETECTOR },
  ]);
  const [a] = nodes;
  const where = await command(a.child, { type: "prepareAsk", remote: "b" });
  log(`ask: remote counter ${where.remote}, local counter ${where.local}, transport echo a -> b`);
  for (const mode of ASK_MODES) await command(a.child, { type: "ask", mode, count: SETTINGS.askWarmup });
  const samples = { remote: [], local: [], transport: [] };
  const perBlock = SETTINGS.askSamples / SETTINGS.askBlocks;
  for (let block = 0; block < SETTINGS.askBlocks; block++) {
    // Each block starts with a different kind: all three see the same background load.
    const order = ASK_MODES.map((_, i) => ASK_MODES[(i + block) % ASK_MODES.length]);
    for (const mode of order) {
      const answer = await command(a.child, { type: "ask", mode, count: perBlock });
      samples[mode].push(...answer.samples);
    }
  }
  await stopCluster(nodes);
  const out = {};
  for (const mode of ASK_MODES) {
    const all = samples[mode];
    out[mode] = { p50: percentile(all, 0.5), p99: percentile(all, 0.99), n: all.length };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 2. remote spawn-and-complete throughput.

async function measureSpawns(log) {
  const nodes = await startCluster([
    { name: "spawner", slots: 0, ...DEFAULT_DETECTOR },
    { name: "host1", slots: SETTINGS.hostSlots, ...DEFAULT_DETECTOR },
    { name: "host2", slots: SETTINGS.hostSlots, ...DEFAULT_DETECTOR },
  ]);
  const [spawner] = nodes;
  const run = (count) => command(spawner.child, { type: "spawns", count, inFlight: SETTINGS.spawnInFlight });
  await run(SETTINGS.spawnWarmup);
  const blocks = [];
  for (let block = 0; block < SETTINGS.spawnBlocks; block++) {
    const answer = await run(SETTINGS.spawnTotal / SETTINGS.spawnBlocks);
    blocks.push({ rate: answer.count / answer.seconds, perNode: answer.perNode, retained: answer.retained });
    log(`spawn block ${block + 1}: ${fmt(answer.count / answer.seconds, 0)} actors/s, per host ${JSON.stringify(answer.perNode)}, ${answer.retained} finished records kept by the supervisor`);
  }
  await stopCluster(nodes);
  return { rate: median(blocks.map((b) => b.rate)), blocks };
}

// ---------------------------------------------------------------------------------------------
// 3. failover: time from killing (or stopping) the host to the migrated actor's next transition.

const FAILOVER_CASES = [
  { detector: "default", signal: "SIGKILL" },
  { detector: "fast", signal: "SIGKILL" },
  { detector: "default", signal: "SIGSTOP" },
  { detector: "fast", signal: "SIGSTOP" },
];

/** The failover target of a case, in ms: detection time + the allowed slack. */
function failoverBudget({ detector, signal }) {
  const d = DETECTORS[detector];
  // A crashed process: down-after-ms is the silence threshold. A hung one (SIGSTOP) can only be
  // found by silence, checked once per heartbeat round: up to down-after + heartbeat.
  const detection = signal === "SIGKILL" ? d.downAfterMs : d.downAfterMs + d.heartbeatMs;
  return { detection, budget: detection + TARGETS.failoverSlackMs };
}

async function failoverOnce({ detector, signal }) {
  const settings = DETECTORS[detector];
  const nodes = await startCluster([
    { name: "sup", slots: 0, ...settings },
    { name: "host1", slots: 4, ...settings },
    { name: "host2", slots: 4, ...settings },
  ]);
  try {
    const victims = Object.fromEntries(nodes.slice(1).map((n) => [n.name, n.pid]));
    const result = await command(nodes[0].child, {
      type: "failover",
      victims,
      signal,
      askEveryMs: SETTINGS.failoverAskEveryMs,
      killAfterMs: 300,
      askTimeoutMs: 5_000, // ActorRef.ask's default
      timeoutMs: 20_000,
    });
    return result;
  } finally {
    // The victim is dead or stopped (a stopped process reads no IPC): the hosts go by SIGKILL.
    await Promise.all(nodes.slice(1).map((n) => kill(n.child)));
    await stop(nodes[0].child);
  }
}

async function measureFailover(log) {
  const runs = new Map(FAILOVER_CASES.map((c) => [c, []]));
  for (let rep = 0; rep < SETTINGS.failoverRepeats; rep++) {
    // Rotate the order: no case always runs first (or last) in a round.
    const order = FAILOVER_CASES.map((_, i) => FAILOVER_CASES[(i + rep) % FAILOVER_CASES.length]);
    for (const c of order) {
      const r = await failoverOnce(c);
      runs.get(c).push(r);
      log(
        `failover ${c.signal} ${c.detector}: ${r.from} -> ${r.to}: down ${fmt(r.down)} ms (${r.why ?? "?"}), running elsewhere ${fmt(r.running)} ms, ` +
          `first ask there ${fmt(r.firstAsk)} ms (sent at ${fmt(r.firstAskSentAt)} ms); link closed ${fmt(r.disconnected)} ms; ${continuity(r)}` +
          (r.errors.length ? `; ask errors: ${r.errors.map((e) => `${e.code}@${e.at}ms`).join(", ")}` : ""),
      );
    }
  }
  return FAILOVER_CASES.map((c) => {
    const list = runs.get(c);
    // A failover that never completed counts as infinitely slow.
    const firstAsk = median(list.map((r) => r.firstAsk ?? Number.POSITIVE_INFINITY));
    return { ...c, ...failoverBudget(c), runs: list, firstAsk, down: median(list.map((r) => r.down ?? Number.POSITIVE_INFINITY)) };
  });
}

// ---------------------------------------------------------------------------------------------
// 4. heap per live idle machine actor.

async function measureHeap(snapshotDir) {
  const child = forkScript("./heap.mjs", [JSON.stringify({ actors: SETTINGS.heapActors, snapshotDir })], ["--expose-gc"], undefined, "heap");
  try {
    return await message(child, "heap", 180_000);
  } finally {
    await kill(child);
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

const fmt = (value, digits = 1) => (typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : value === Number.POSITIVE_INFINITY ? "never" : String(value ?? "-"));
const kb = (bytes, digits = 2) => fmt(bytes / 1024, digits);

function report({ ask, spawn, failover, heap }) {
  const rows = [["metric", "value", "compared with", "ratio", "target"]];
  const notes = [];
  const verdicts = [];
  const skip = (what) => verdicts.push(`SKIP  ${what}: not measured (--only)`);

  if (ask) {
    const t = ask.transport;
    rows.push(
      ["remote ask p50 (us)", fmt(ask.remote.p50), `transport ${fmt(t.p50)}`, ratio(ask.remote.p50, t.p50), `<= ${TARGETS.askRatio.toFixed(2)}x`],
      ["remote ask p99 (us)", fmt(ask.remote.p99), `transport ${fmt(t.p99)}`, ratio(ask.remote.p99, t.p99), "-"],
      ["local ask p50 (us)", fmt(ask.local.p50), `transport ${fmt(t.p50)}`, ratio(ask.local.p50, t.p50), "-"],
      ["local ask p99 (us)", fmt(ask.local.p99), `transport ${fmt(t.p99)}`, ratio(ask.local.p99, t.p99), "-"],
      ["transport round trip p50 (us)", fmt(t.p50), "-", "-", "-"],
      ["transport round trip p99 (us)", fmt(t.p99), "-", "-", "-"],
    );
    notes.push(
      `ask: n=${ask.remote.n} of each kind, in ${SETTINGS.askBlocks} interleaved blocks. remote = counter on node b, asked from node a, which supervises it; local = counter on node a itself; transport = transport.request("bench.echo") from a to b on the same connection, with a body shaped like host.ask's.`,
    );
    verdicts.push(verdict("remote ask p50", ask.remote.p50 / t.p50 <= TARGETS.askRatio, `${ratio(ask.remote.p50, t.p50, 3)} the transport round trip, target <= ${TARGETS.askRatio}x`));
  } else skip("remote ask p50");

  if (spawn) {
    const first = spawn.blocks[0];
    const last = spawn.blocks.at(-1);
    rows.push([
      `spawn-and-complete, ${SETTINGS.spawnInFlight} in flight (actors/s)`,
      fmt(spawn.rate, 0),
      `first block ${fmt(first.rate, 0)}, last ${fmt(last.rate, 0)}`,
      ratio(last.rate, first.rate),
      "-",
    ]);
    notes.push(
      `spawn: spawner node with 0 slots (it only supervises) -> host1 + host2 with ${SETTINGS.hostSlots} slots each; no-op tool actors, default placement. ` +
        `${SETTINGS.spawnWarmup} warm-up, then ${SETTINGS.spawnTotal} in ${SETTINGS.spawnBlocks} blocks, median shown; block rates ${spawn.blocks.map((b) => fmt(b.rate, 0)).join(", ")} /s ` +
        `with ${spawn.blocks.map((b) => b.retained).join(", ")} finished records kept by the supervisor at the end of each; last block per host ${JSON.stringify(last.perNode)}. ratio = last block / first block.`,
    );
  }

  if (failover) {
    for (const f of failover) {
      const d = DETECTORS[f.detector];
      rows.push([
        `failover, ${f.signal === "SIGKILL" ? "host killed" : "host hung"} (${f.signal}), ${f.detector} ${d.heartbeatMs}/${d.suspectAfterMs}/${d.downAfterMs} (ms)`,
        fmt(f.firstAsk, 0),
        `marked down ${fmt(f.down, 0)}`,
        "-",
        `<= ${f.budget}`,
      ]);
      const each = f.runs.map(
        (r) =>
          `${r.timedOut ? `no answer from another node within ${r.timedOut} ms` : fmt(r.firstAsk, 0)} (down ${fmt(r.down, 0)} ${shortWhy(r.why)}, link closed ${fmt(r.disconnected, 0)}, running elsewhere ${fmt(r.running, 0)}` +
          `${r.errors.length ? `, ${r.errors.length} ask error(s): ${r.errors.map((e) => e.code).join(" ")}` : ""}; ${r.askInFlight ? "ask in flight at the signal, " : ""}${continuity(r)})`,
      );
      notes.push(`failover ${f.signal} ${f.detector}, ms after the signal: ${each.join("; ")}`);
      verdicts.push(
        verdict(`failover ${f.signal} ${f.detector}`, f.firstAsk <= f.budget, `median ${fmt(f.firstAsk)} ms, target <= ${f.budget} ms (detection ${f.detection} + ${TARGETS.failoverSlackMs})`),
      );
    }
  } else skip("failover");

  if (heap) {
    rows.push(["heap per idle machine actor (KB)", kb(heap.perActor), `bare XState ${kb(heap.bareXState)}`, ratio(heap.perActor, heap.bareXState), `<= ${TARGETS.heapKb}`]);
    notes.push(
      `heap: ${heap.actors} counters spawned locally, ${fmt(heap.heapUsedMb)} MB heap used with them; per actor: ${Object.entries(heap.parts)
        .map(([k, v]) => `${k} ${kb(v)} KB`)
        .join(", ")}. Bare XState actor ${kb(heap.bareXState)} KB, with an inspect callback ${kb(heap.bareXStateInspect)} KB. Spawning the ${heap.actors} took ${fmt(heap.spawnSeconds, 2)} s.`,
    );
    if (heap.snapshot) {
      notes.push(`heap snapshots: ${heap.snapshot.before}, ${heap.snapshot.after}; what was added, per actor, by type:constructor (self size):`);
      for (const row of heap.snapshot.top) notes.push(`    ${row.key.padEnd(50)} ${fmt(row.bytesPerActor, 0).padStart(6)} B  x${fmt(row.countPerActor, 2)}`);
    }
    verdicts.push(verdict("heap per actor", heap.perActor / 1024 <= TARGETS.heapKb, `${kb(heap.perActor, 3)} KB, target <= ${TARGETS.heapKb} KB`));
  } else skip("heap per actor");

  console.log(table(rows));
  console.log(`\n${notes.join("\n")}\n`);
  for (const line of verdicts) console.log(line);
}

/** Whether the counter went on from where the old host left it: its checkpoint was current. */
function continuity(r) {
  if (typeof r.countAfter !== "number") return `count ${r.countBefore} -> none`;
  const gap = r.countAfter - (r.countBefore + 1);
  const state = gap === 0 ? "continuous" : gap < 0 ? `${-gap} INC lost` : `${gap} INC applied twice`;
  return `count ${r.countBefore} -> ${r.countAfter}, ${state}`;
}

function shortWhy(why) {
  if (!why) return "(not marked down)";
  if (why.startsWith("connection refused")) return "by refused redial";
  return `by ${why}`;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const args = process.argv.slice(2);
  // CPU profiles of every worker (open in Chrome devtools or speedscope). Profiling slows
  // everything down: do not read the table then.
  const profiling = await cpuProfiling(args);
  if (profiling) {
    execArgv = profiling.execArgv;
    console.error(`writing CPU profiles to ${profiling.dir}`);
  }
  const snapIndex = args.indexOf("--heap-snapshot");
  const snapshotDir = snapIndex >= 0 ? resolve(args[snapIndex + 1] ?? "bench-heap") : null;

  const onlyIndex = args.indexOf("--only");
  const parts = new Set(onlyIndex >= 0 ? (args[onlyIndex + 1] ?? "").split(",") : PARTS);
  for (const part of parts) if (!PARTS.includes(part)) throw new Error(`--only takes a comma-separated list of ${PARTS.join(", ")}; got "${part}"`);
  pinning = wantPinning(args);
  const log = (line) => console.error(`[bench] ${line}`);
  log(`node ${process.version}, ${cpus().length} cpus, ${pinning ? "measuring node pinned to cpu 1, its peers to cpu 0" : "not pinned"}`);
  log(JSON.stringify(SETTINGS));

  const started = performance.now();
  const results = {};
  if (parts.has("ask")) {
    log("ask round trips: remote, local, transport, interleaved ...");
    results.ask = await measureAsk(log);
    for (const mode of ASK_MODES) log(`${mode.padEnd(9)}: p50 ${fmt(results.ask[mode].p50)} us, p99 ${fmt(results.ask[mode].p99)} us (n=${results.ask[mode].n})`);
  }
  if (parts.has("spawn")) {
    log("spawn-and-complete throughput ...");
    results.spawn = await measureSpawns(log);
  }
  if (parts.has("failover")) {
    log(`failover, ${SETTINGS.failoverRepeats} runs of each case ...`);
    results.failover = await measureFailover(log);
  }
  if (parts.has("heap")) {
    log(`heap per actor, ${SETTINGS.heapActors} counters${snapshotDir ? `, heap snapshots in ${snapshotDir}` : ""} ...`);
    results.heap = await measureHeap(snapshotDir);
  }
  log(`done in ${fmt((performance.now() - started) / 1000)} s`);

  console.log("");
  report(results);
}

runMain(main);
