// Child process: heap per live idle machine actor. Run by run.mjs with --expose-gc:
//   node --expose-gc heap.mjs '{"actors":10000,"warmup":200,"snapshotDir":null}'
// One runtime node alone (no peers), slots for every actor. Answers { type: "heap", ... } over IPC
// (or prints it as JSON when run by hand).
//
// 1. reference: N bare XState actors of the same machine (createActor + start), and N with an
//    `inspect` callback, as the host creates them: what XState itself costs per actor.
// 2. the measurement: N counters spawned through Runtime.spawn (placement local), all running and
//    idle; heapUsed after GC, before and after, divided by N.
// 3. where it goes, by taking the live structures apart one at a time and measuring what GC then
//    frees (the runtime is not usable afterwards; it is a measurement, not a shutdown):
//      supervisor checkpoints  SupervisedActor.checkpoint: the last checkpoint of each actor
//      supervisor records      the rest of SupervisedActor (view, history, decision, promise, ...)
//      host actors             ActorHost's Hosted entries: the XState actor, the SpawnRequest, ...
// 4. with snapshotDir: two V8 heap snapshots around step 2 and the objects that were added, by
//    constructor, per actor.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { writeHeapSnapshot } from "node:v8";
import { createActor } from "xstate";
import { DEFAULT_DETECTOR, counterMachine, startRuntimeNode } from "./node.mjs";

const options = { actors: 10_000, warmup: 200, snapshotDir: null, ...JSON.parse(process.argv[2] ?? "{}") };
const N = options.actors;

if (typeof globalThis.gc !== "function") throw new Error("run with node --expose-gc");

/** heapUsed after full GCs, once it has settled. */
async function heapUsed() {
  let last = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 10; i++) {
    globalThis.gc();
    await sleep(5); // lets weak callbacks and finalizers run between collections
    const used = process.memoryUsage().heapUsed;
    if (Math.abs(used - last) < 16 * 1024) return used;
    last = used;
  }
  return last;
}

async function until(predicate, timeoutMs, what) {
  const end = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(5);
  }
}

/** N bare XState actors of the counter machine, started; bytes per actor. */
async function bareXState(withInspect) {
  const warm = createActor(counterMachine, { input: { start: 0 } }).start();
  warm.stop();
  const before = await heapUsed();
  let actors = [];
  const inspect = withInspect ? () => {} : undefined;
  for (let i = 0; i < N; i++) actors.push(createActor(counterMachine, { input: { start: 0 }, ...(inspect && { inspect: (e) => inspect(i, e) }) }).start());
  const after = await heapUsed();
  for (const a of actors) a.stop();
  actors = undefined;
  return (after - before) / N;
}

/** Self sizes of a heap snapshot's nodes, summed by "type:name". */
function bySelfSize(file) {
  const snap = JSON.parse(readFileSync(file, "utf8"));
  const { node_fields: fields, node_types: types } = snap.snapshot.meta;
  const width = fields.length;
  const iType = fields.indexOf("type");
  const iName = fields.indexOf("name");
  const iSize = fields.indexOf("self_size");
  const typeNames = types[iType];
  const sums = new Map();
  const { nodes, strings } = snap;
  for (let i = 0; i < nodes.length; i += width) {
    const type = typeNames[nodes[i + iType]];
    // Strings and numbers are named by their content: group them by type alone.
    const name = type === "string" || type === "concatenated string" || type === "sliced string" || type === "number" ? "" : strings[nodes[i + iName]];
    const key = `${type}:${name}`;
    const entry = sums.get(key) ?? { bytes: 0, count: 0 };
    entry.bytes += nodes[i + iSize];
    entry.count++;
    sums.set(key, entry);
  }
  return sums;
}

function snapshotDiff(beforeFile, afterFile) {
  const before = bySelfSize(beforeFile);
  const after = bySelfSize(afterFile);
  const rows = [];
  for (const [key, a] of after) {
    const b = before.get(key) ?? { bytes: 0, count: 0 };
    const bytes = a.bytes - b.bytes;
    if (bytes > 0) rows.push({ key, bytesPerActor: bytes / N, countPerActor: (a.count - b.count) / N });
  }
  rows.sort((x, y) => y.bytesPerActor - x.bytesPerActor);
  return rows.slice(0, 25);
}

async function main() {
  const result = { actors: N };
  result.bareXState = await bareXState(false);
  result.bareXStateInspect = await bareXState(true);

  const node = await startRuntimeNode({ name: "heap", slots: N + options.warmup, seeds: [], ...DEFAULT_DETECTOR });
  const { runtime } = node;
  const spawnAll = async (count) => {
    const records = [];
    for (let i = 0; i < count; i++) records.push(runtime.spawn("counter", { start: 0 }, { placement: { prefer: "local" } }).record);
    await until(() => records.every((r) => r.status === "running"), 60_000, `${count} counters running`);
    return records;
  };
  // Warm-up: the first spawns compile code and grow maps; they stay alive in the baseline.
  const warm = await spawnAll(options.warmup);
  for (const r of warm.slice(0, 20)) await runtime.ask(r.id, { type: "INC" }, 5_000);
  await sleep(100);

  if (options.snapshotDir) mkdirSync(options.snapshotDir, { recursive: true });
  const before = await heapUsed();
  const beforeFile = options.snapshotDir && writeHeapSnapshot(join(options.snapshotDir, "before.heapsnapshot"));
  const started = performance.now();
  let measured = await spawnAll(N);
  result.spawnSeconds = (performance.now() - started) / 1000;
  // Idle: let the coalesced update timers (10 ms) fire and their checkpoints land.
  await sleep(200);
  const after = await heapUsed();
  result.perActor = (after - before) / N;
  result.heapUsedMb = after / 1024 / 1024;
  if (options.snapshotDir) {
    const afterFile = writeHeapSnapshot(join(options.snapshotDir, "after.heapsnapshot"));
    result.snapshot = { before: beforeFile, after: afterFile, top: snapshotDiff(beforeFile, afterFile) };
  }

  // Take the N measured actors apart (the warm-up ones stay). Internal fields are reached from JS
  // on purpose (TypeScript `private` is not enforced at run time); each step frees one part and GC
  // tells how much it held.
  const parts = {};
  let level = await heapUsed();
  const freed = async (name) => {
    const now = await heapUsed();
    parts[name] = (level - now) / N;
    level = now;
  };
  const ids = new Set(measured.map((r) => r.id));
  const sample = measured.at(-1);
  result.checkpointJsonBytes = JSON.stringify(sample.checkpoint ?? null).length;
  result.viewJsonBytes = JSON.stringify(sample.view).length;
  result.historyEntries = sample.history.length;
  for (const r of measured) r.checkpoint = undefined;
  await freed("supervisor: last checkpoint");
  for (const id of ids) runtime.supervisor.actors.delete(id);
  measured = undefined;
  await freed("supervisor: rest of record");
  const hosted = runtime.host.actors;
  result.hostedReqJsonBytes = JSON.stringify(hosted.get(sample.id).req).length;
  for (const id of ids) {
    const h = hosted.get(id);
    h.ended = true;
    clearTimeout(h.flushTimer);
    h.actor.stop();
    hosted.delete(id);
  }
  await freed("host: XState actor + Hosted");
  parts["not freed by the above"] = (level - before) / N;
  result.parts = parts;
  return result;
}

try {
  const result = await main();
  if (process.send) process.send({ type: "heap", ...result }, () => process.exit(0));
  else {
    console.log(JSON.stringify(result, null, 2));
    process.exit(0);
  }
} catch (err) {
  if (process.send) process.send({ type: "error", message: `heap: ${err.stack ?? err}` }, () => process.exit(1));
  else {
    console.error(err);
    process.exit(1);
  }
}
