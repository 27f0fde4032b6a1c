// Child process: one Shoal runtime node (see node.mjs), driven by run.mjs over IPC.
// Usage (forked by run.mjs): worker.mjs '<json: {name, slots, seeds, heartbeatMs, suspectAfterMs, downAfterMs}>'
// Says { type: "ready", address, id, pid } once it listens (on a port the kernel picked), then
// runs the parent's commands one at a time; each answer has the command's type:
//   { type: "converge", count }                 -> once it sees `count` members up
//   { type: "prepareAsk", remote }               -> a counter on `remote`, one on this node
//   { type: "ask", mode, count }                 -> { samples: [us, ...] }, mode remote|local|transport
//   { type: "spawns", count, inFlight }          -> { seconds, perNode, retained }
//   { type: "failover", victims, signal, ... }   -> timings of one failover (see failover())
//   { type: "stop" }                             -> leaves the mesh and exits
import { setTimeout as sleep } from "node:timers/promises";
import { memoryLogger, startRuntimeNode } from "./node.mjs";

const config = JSON.parse(process.argv[2]);
const logger = memoryLogger();
const INC = { type: "INC" };

const fail = (err) => process.send({ type: "error", message: `${config.name}: ${err?.stack ?? err}` }, () => process.exit(1));
process.on("disconnect", () => process.exit(1)); // the parent died: do not linger

/** Resolves once `predicate()` holds; polls every 2 ms. */
async function until(predicate, timeoutMs, what) {
  const end = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(2);
  }
}

let node;
let ask; // the three round trips of the ask benchmark, after prepareAsk

function converge({ count, timeoutMs = 10_000 }) {
  return until(() => node.mesh.members().filter((m) => m.status === "up").length >= count, timeoutMs, `${config.name} seeing ${count} members up`);
}

/** Places one counter on `remote` and one on this node, both pinned, and checks all three paths. */
async function prepareAsk({ remote }) {
  const { runtime, mesh, transport } = node;
  const remoteRef = runtime.spawn("counter", { start: 0 }, { placement: { node: remote } });
  const localRef = runtime.spawn("counter", { start: 0 }, { placement: { node: config.name } });
  await until(() => remoteRef.record.status === "running" && localRef.record.status === "running", 10_000, "counters running");
  if (remoteRef.record.nodeName !== remote || localRef.record.nodeName !== config.name) {
    throw new Error(`counters placed on ${remoteRef.record.nodeName} and ${localRef.record.nodeName}, wanted ${remote} and ${config.name}`);
  }
  const peer = mesh.members().find((m) => m.name === remote);
  // The echo carries what a host.ask request carries, so both frames are the same size.
  const payload = { actorId: remoteRef.id, event: INC, timeoutMs: 5_000 };
  const echoed = await transport.request(peer.id, "bench.echo", payload);
  if (echoed?.actorId !== payload.actorId || echoed?.event?.type !== "INC") throw new Error(`echo returned ${JSON.stringify(echoed)}`);
  const expected = { remote: 0, local: 0 };
  const check = (mode, view) => {
    // Every ask must really count: the snapshot right after INC shows the new count.
    if (view?.context?.count !== ++expected[mode]) throw new Error(`${mode} ask: count ${JSON.stringify(view?.context)}, expected ${expected[mode]}`);
  };
  ask = {
    remote: async () => check("remote", await remoteRef.ask(INC, { timeoutMs: 5_000 })),
    local: async () => check("local", await localRef.ask(INC, { timeoutMs: 5_000 })),
    transport: () => transport.request(peer.id, "bench.echo", payload, { timeoutMs: 5_000 }),
  };
  return { remote: remoteRef.address, local: localRef.address };
}

/** `count` sequential round trips of one kind; each in microseconds. */
async function askRoundTrips({ mode, count }) {
  const once = ask[mode];
  const samples = new Array(count);
  for (let i = 0; i < count; i++) {
    const start = process.hrtime.bigint();
    await once();
    samples[i] = Number(process.hrtime.bigint() - start) / 1_000;
  }
  return { samples };
}

/**
 * Spawn-and-complete: `count` no-op tool actors with `inFlight` of them outstanding at all times
 * (an actor counts from `spawn` until its output is back here). Placement is the default
 * (least loaded); this node should have 0 slots, so every actor runs remotely.
 */
function spawns({ count, inFlight }) {
  const { runtime } = node;
  return new Promise((resolve, reject) => {
    const perNode = {};
    let sent = 0;
    let done = 0;
    const start = process.hrtime.bigint();
    const launch = () => {
      const i = sent++;
      const ref = runtime.spawn("noop", { i });
      ref.done.then((output) => {
        if (output?.i !== i) return reject(new Error(`noop ${ref.id} returned ${JSON.stringify(output)}, expected {"i":${i}}`));
        const where = ref.record.nodeName;
        perNode[where] = (perNode[where] ?? 0) + 1;
        done++;
        if (done === count) {
          const seconds = Number(process.hrtime.bigint() - start) / 1e9;
          // Finished actors the supervisor still keeps (for queries, 5 minutes by default).
          resolve({ seconds, count, perNode, retained: runtime.supervisor.all().length });
        } else if (sent < count) launch();
      }, reject);
    };
    for (let i = 0; i < Math.min(inFlight, count); i++) launch();
  });
}

/**
 * One failover. Spawns a counter (default placement, so on one of the hosts), asks INC every
 * `askEveryMs`, and after `killAfterMs` sends `signal` to the process hosting it (the pid comes
 * from the parent in `victims`, by node name). Then measures, from the kill:
 *   down     this node's mesh marks the host down (and why: refused redial, or silence)
 *   running  the supervisor has the actor running on another node (spawned there from its checkpoint)
 *   firstAsk the first ask answered by the new node: the migrated actor's next transition
 * All times come from this process's clock (performance.now()), kill included.
 */
async function failover({ victims, signal, askEveryMs, killAfterMs, askTimeoutMs, timeoutMs }) {
  const { runtime, mesh } = node;
  const ref = runtime.spawn("counter", { start: 0 });
  const record = ref.record;
  await until(() => record.status === "running", 10_000, "failover counter running");
  const from = record.nodeName;
  const pid = victims[from];
  if (!pid) throw new Error(`the counter runs on ${from}, which is not one of ${Object.keys(victims).join(", ")}`);
  for (let i = 0; i < 20; i++) await ref.ask(INC, { timeoutMs: askTimeoutMs }); // warm the path

  let killedAt;
  const marks = {};
  const since = () => performance.now() - killedAt;
  const onDown = (m) => {
    if (killedAt !== undefined && m.name === from) marks.down ??= since();
  };
  const onChanged = (actor) => {
    if (killedAt === undefined || actor !== record) return;
    if (actor.status === "moving") marks.moving ??= since();
    if (actor.status === "running" && actor.nodeName !== from) marks.running ??= since();
  };
  const victimId = mesh.members().find((m) => m.name === from)?.id;
  const onDisconnected = (conn) => {
    if (killedAt !== undefined && conn.peer.id === victimId) marks.disconnected ??= since();
  };
  mesh.on("down", onDown);
  runtime.supervisor.on("changed", onChanged);
  node.transport.on("disconnected", onDisconnected);
  const logStart = logger.entries.length;

  // The count in the last answer from the old host; the first answer from the new one should be
  // one more: no INC lost with the host, none applied twice.
  let lastCount = record.view.context?.count;
  let asking = false;
  const killer = setTimeout(() => {
    killedAt = performance.now();
    marks.askInFlight = asking; // an INC on its way to (or being handled by) the host
    process.kill(pid, signal);
    // A stopped process would outlive a bench that dies now; continued, it sees its parent gone
    // and exits. (SIGCONT is harmless to a process that is not stopped.)
    if (signal === "SIGSTOP") {
      process.once("exit", () => {
        try {
          process.kill(pid, "SIGCONT");
        } catch {
          // already gone: the parent killed it
        }
      });
    }
  }, killAfterMs);
  const errors = [];
  let asksAfterKill = 0;
  let result;
  const deadline = performance.now() + killAfterMs + timeoutMs;
  try {
    while (!result) {
      if (performance.now() > deadline) {
        // Not a broken bench but a failed failover: reported as such.
        result = { firstAsk: null, timedOut: timeoutMs };
        break;
      }
      const sentAfterKill = killedAt !== undefined;
      const sentAt = sentAfterKill ? since() : undefined;
      try {
        asking = true;
        const view = await ref.ask(INC, { timeoutMs: askTimeoutMs }).finally(() => {
          asking = false;
        });
        const at = killedAt === undefined ? undefined : since();
        if (sentAfterKill) asksAfterKill++;
        if (at !== undefined && record.status === "running" && record.nodeName !== from) {
          result = { firstAsk: at, firstAskSentAt: sentAt, countAfter: view.context?.count };
        } else lastCount = view.context?.count;
      } catch (err) {
        errors.push({ code: err.code ?? err.message, at: killedAt === undefined ? null : Math.round(since()) });
      }
      await sleep(askEveryMs);
    }
  } finally {
    clearTimeout(killer);
    mesh.off("down", onDown);
    runtime.supervisor.off("changed", onChanged);
    node.transport.off("disconnected", onDisconnected);
  }
  // Why the mesh said down: "connection refused at its address", "silent for N ms", or gossip.
  const downLog = logger.entries.slice(logStart).find((e) => e.msg === "member down" && e.member === from);
  return {
    from,
    to: record.nodeName,
    signal,
    ...marks,
    ...result,
    countBefore: lastCount,
    asksAfterKill,
    why: downLog?.why ?? null,
    errors,
    epoch: record.epoch,
  };
}

const commands = {
  converge,
  prepareAsk,
  ask: askRoundTrips,
  spawns,
  failover,
};

try {
  node = await startRuntimeNode({ ...config, logger });
  let queue = Promise.resolve();
  process.on("message", (msg) => {
    if (msg?.type === "stop") {
      // A normal exit (not a kill) so that `--cpu-prof` can write its profile.
      queue.finally(() => node.close()).finally(() => process.exit(0));
      return;
    }
    const command = commands[msg?.type];
    if (!command) return fail(new Error(`unknown command ${JSON.stringify(msg)}`));
    // One at a time, in order.
    queue = queue.then(() => command(msg)).then((answer) => process.send({ ...answer, type: msg.type }), fail);
  });
  process.send({ type: "ready", address: node.address, id: node.identity.id, pid: process.pid });
} catch (err) {
  fail(err);
}
