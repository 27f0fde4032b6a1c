// Command-line options shared by the benchmarks.
import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";

/** The value after `name` in `args`: undefined without `name`, "" when nothing follows it. */
export function option(args, name) {
  const i = args.indexOf(name);
  return i < 0 ? undefined : (args[i + 1] ?? "");
}

/**
 * `--cpu-prof [DIR]` (default ./bench-profiles): creates DIR and returns it with the node flags
 * that make every child write a V8 CPU profile into it; undefined without the option. Profiling
 * slows everything down: the table of such a run says where the time goes, not how much it is.
 */
export async function cpuProfiling(args) {
  const value = option(args, "--cpu-prof");
  if (value === undefined) return undefined;
  const dir = resolve(value || "bench-profiles");
  await mkdir(dir, { recursive: true });
  return { dir, execArgv: ["--cpu-prof", `--cpu-prof-dir=${dir}`] };
}
