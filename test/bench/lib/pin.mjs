// CPU pinning with `taskset`. Loopback round trips are bimodal: a wake-up on the same CPU is a
// plain context switch, a wake-up of an idle other CPU costs more. Left to the scheduler, the
// sides being compared can land in different modes and the comparison then measures the
// scheduler; so the benchmarks place their processes on fixed CPUs when they can (each run.mjs
// says where). taskset sets the affinity and execs node in place: the pid and the IPC channel
// stay the same, so the child is the node process itself.
import { fork, spawn, spawnSync } from "node:child_process";
import { cpus } from "node:os";

/** Linux, at least two CPUs and a working `taskset`. */
export function canPin() {
  return process.platform === "linux" && cpus().length >= 2 && spawnSync("taskset", ["-c", "0", process.execPath, "-e", "0"]).status === 0;
}

/** Whether to pin: possible here, and not turned off with `--no-pin` in `args`. */
export const wantPinning = (args) => !args.includes("--no-pin") && canPin();

/** fork(path, args) with `execArgv`, on CPU `cpu`; not pinned when `cpu` is undefined. */
export function forkOn(cpu, path, args, execArgv = []) {
  if (cpu === undefined) return fork(path, args, { execArgv });
  return fork(path, args, { execPath: "taskset", execArgv: ["-c", String(cpu), process.execPath, ...execArgv] });
}

/** spawn(node, args, options) on CPU `cpu`; not pinned when `cpu` is undefined. */
export function spawnOn(cpu, args, options) {
  if (cpu === undefined) return spawn(process.execPath, args, options);
  return spawn("taskset", ["-c", String(cpu), process.execPath, ...args], options);
}
