// Preloaded (`node --import guard.mjs apps/node/dist/cli.js node ...`) into every `shoal node`
// that run.mjs starts, which also gives the node an IPC channel. The node itself is unchanged.
//
// - It makes sure the node does not outlive the benchmark: when the channel closes (run.mjs
//   exited, even by SIGKILL), the node gets SIGTERM, its own clean shutdown (which lets
//   `--cpu-prof` write its profile), and is forced out 5 s later if that hangs.
// - It watches the node's event loop (perf_hooks.monitorEventLoopDelay, 10 ms resolution) and
//   answers { type: "lag" } with { type: "lag", maxMs, p99Ms } since the last ask, so that a
//   node that stops serving I/O for a while shows up in the report.
// - It keeps the node's workflow store (WorkflowStore.open is wrapped: the CLI loads the same
//   module) and answers { type: "store" } with { type: "store", stats } (commits, syncs, ...),
//   for the syncs per workflow of each SHOAL_STORE_SYNC setting.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { WorkflowStore } from "../../../packages/workflow/dist/index.js";

let store;
const open = WorkflowStore.open;
WorkflowStore.open = (...args) => {
  store = open.apply(WorkflowStore, args);
  return store;
};

const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();

process.on("message", (msg) => {
  if (msg?.type === "store") process.send?.({ type: "store", stats: store?.stats });
  if (msg?.type !== "lag") return;
  process.send?.({ type: "lag", maxMs: lag.max / 1e6, p99Ms: lag.percentile(99) / 1e6 });
  lag.reset();
});
process.on("disconnect", () => {
  setTimeout(() => process.exit(1), 5_000).unref();
  process.kill(process.pid, "SIGTERM");
});
// The channel must not keep a node alive that wants to exit on its own.
process.channel?.unref();
