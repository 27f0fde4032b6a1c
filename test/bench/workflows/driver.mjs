// Child process: an in-process Shoal node for the timings that must not include HTTP. Forked by
// run.mjs with one JSON argument { name, join, dataDir, plugin, slots }. It starts a real node
// with `startNode` from @shoal/node (the same assembly `shoal node` runs: transport, mesh,
// runtime, workflow service, HTTP port on 127.0.0.1 port 0), joins `join`, says
// { type: "ready", address, pid }, then answers the parent's commands one at a time:
//
//   { type: "members", count }     -> { type: "members", up }  once `count` members are up
//   { type: "overhead", remote, steps, rounds, warmupRounds }
//       N no-op steps as a chain in ONE workflow, next to N sequential direct spawns of the same
//       tool (`runtime.spawn("noop") + .done`), both placed on the node `remote`; rounds alternate
//       which goes first.  -> { type: "overhead", workflowMs: [...], directMs: [...] }
//   { type: "throughput", concurrency, durationMs, spec }
//       `concurrency` submitters, each in a loop: `workflows.submit(spec)` then `workflows.wait`,
//       then one turn of the event loop, until `durationMs` has passed.
//       -> { type: "throughput", count, errors, seconds, firstError, maxLagMs, rssMb }
//   { type: "stop" } -> stops the node (drain, leave) and exits.
import { mkdirSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setImmediate as nextTurn } from "node:timers/promises";

const config = JSON.parse(process.argv[2]);

async function load() {
  const urls = ["../../../apps/node/dist/index.js", "../../../packages/protocol/dist/index.js"];
  try {
    const [node, protocol] = await Promise.all(urls.map((u) => import(new URL(u, import.meta.url).href)));
    return { startNode: node.startNode, resolveNodeConfig: node.resolveNodeConfig, silentLogger: protocol.silentLogger };
  } catch (err) {
    throw new Error(`cannot load the built Shoal packages (${err.message}); run the build first`);
  }
}

/** A chain s0 -> s1 -> ... : each step waits for the one before, so they run one after another. */
function chainSpec(steps, remote) {
  return {
    name: `overhead-${steps}`,
    max_parallel: 1,
    steps: Array.from({ length: steps }, (_, i) => ({
      id: `s${i}`,
      tool: "noop",
      input: { n: i },
      ...(i > 0 && { needs: [`s${i - 1}`] }),
      placement: { node: remote },
    })),
  };
}

async function main() {
  const { startNode, resolveNodeConfig, silentLogger } = await load();
  mkdirSync(config.dataDir, { recursive: true });
  const node = await startNode({
    config: resolveNodeConfig({
      name: config.name,
      host: "127.0.0.1",
      port: 0,
      join: config.join,
      slots: config.slots,
      plugin: config.plugin ? [config.plugin] : [],
      "data-dir": config.dataDir,
      "log-level": "warn",
      "drain-grace-ms": 1_000,
    }),
    logger: silentLogger,
  });
  const { runtime, workflows, mesh } = node;

  const runWorkflow = async (spec) => {
    const { workflow_id } = await workflows.submit(spec);
    return workflows.wait(workflow_id);
  };

  async function overhead({ remote, steps, rounds, warmupRounds }) {
    const spec = chainSpec(steps, remote);
    const placement = { node: remote };
    const viaWorkflow = async () => {
      const t0 = performance.now();
      const result = await runWorkflow(spec);
      const ms = performance.now() - t0;
      if (result.status !== "complete" || result.steps_completed !== steps) {
        throw new Error(`overhead workflow ended ${result.status} with ${result.steps_completed}/${steps} steps: ${JSON.stringify(result.failures).slice(0, 300)}`);
      }
      if (result.nodes_used.join() !== remote) throw new Error(`overhead workflow ran on ${result.nodes_used.join()}, not ${remote}`);
      return ms;
    };
    const direct = async () => {
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) {
        const ref = runtime.spawn("noop", { n: i }, { placement });
        const out = await ref.done;
        if (out?.ok !== true) throw new Error(`direct spawn of noop gave ${JSON.stringify(out)}`);
      }
      return performance.now() - t0;
    };
    // Warm-up: the first rounds run in V8's interpreter and fill caches; they are not counted.
    for (let r = 0; r < warmupRounds; r++) {
      await viaWorkflow();
      await direct();
    }
    const workflowMs = [];
    const directMs = [];
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        workflowMs.push(await viaWorkflow());
        directMs.push(await direct());
      } else {
        directMs.push(await direct());
        workflowMs.push(await viaWorkflow());
      }
    }
    return { workflowMs, directMs };
  }

  async function throughput({ concurrency, durationMs, spec }) {
    let count = 0;
    let errors = 0;
    let firstError;
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const start = performance.now();
    const deadline = start + durationMs;
    const submitter = async () => {
      while (performance.now() < deadline) {
        // A workflow of local no-op steps completes in microtasks alone: without this turn, 32
        // loops would never let the event loop run (no heartbeats, no I/O), which no submission
        // that arrives over the network could do either.
        await nextTurn();
        try {
          const result = await runWorkflow(spec);
          if (result.status === "complete") count++;
          else {
            errors++;
            firstError ??= `ended ${result.status}: ${JSON.stringify(result.failures).slice(0, 300)}`;
          }
        } catch (err) {
          errors++;
          firstError ??= String(err?.message ?? err);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, submitter));
    const seconds = (performance.now() - start) / 1_000;
    lag.disable();
    return { count, errors, seconds, firstError, maxLagMs: lag.max / 1e6, rssMb: process.memoryUsage().rss / 2 ** 20 };
  }

  async function members({ count }) {
    const end = Date.now() + 20_000;
    for (;;) {
      const up = mesh.members().filter((m) => m.status === "up").length;
      if (up >= count) return { up };
      if (Date.now() > end) throw new Error(`${config.name} sees ${up} members up, not ${count}, after 20 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  const commands = { overhead, throughput, members };
  process.on("message", (msg) => {
    if (msg?.type === "stop") {
      // A normal exit (not a kill) so that `--cpu-prof` can write its profile.
      node.stop().finally(() => process.exit(0));
      return;
    }
    const run = commands[msg?.type];
    if (run) run(msg).then((answer) => process.send({ type: msg.type, ...answer }), fail);
  });
  process.send({ type: "ready", address: node.identity.address, pid: process.pid });
}

const fail = (err) => process.send({ type: "error", message: `driver ${config.name}: ${err?.stack ?? err}` }, () => process.exit(1));
process.on("disconnect", () => process.exit(1)); // the parent died: do not linger
main().catch(fail);
