#!/usr/bin/env node
// The long fuzz run (`npm run fuzz`): the same test file as the CI part (fuzz.test.ts), run by
// vitest with SHOAL_FUZZ_LONG=1 and the budgets given here, then its report printed. See README.md.
//
//   npm run fuzz -- [--frames 100000] [--requests 10000] [--minutes 20] [--seed N] [--replay PART:SEED:PATH]
//
// Exits 0 when the targets are met (0 crashes, 0 5xx, 0 bodiless errors, RSS growth after the
// warm-up under 50 MB per node), 1 otherwise.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
function fail(message) {
  process.stderr.write(`fuzz: ${message}\n`);
  process.exit(2);
}
let values;
try {
  const text = { type: "string" };
  ({ values } = parseArgs({ options: { frames: text, requests: text, minutes: text, seed: text, replay: text }, strict: true }));
} catch (err) {
  fail(err.message);
}

const number = (name, fallback) => {
  const value = values[name.slice(2)];
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) fail(`${name} wants a number, got ${value}`);
  return String(n);
};
// A seed of its own for each run unless one is given, printed so that the run can be repeated.
const seed = number("--seed", String(Date.now() % 1_000_000_000));
const report = join(tmpdir(), `shoal-fuzz-${process.pid}.txt`);
const env = {
  ...process.env,
  SHOAL_FUZZ_LONG: "1",
  SHOAL_FUZZ_SEED: seed,
  SHOAL_FUZZ_FRAMES: number("--frames", "100000"),
  SHOAL_FUZZ_REQUESTS: number("--requests", "10000"),
  SHOAL_FUZZ_MINUTES: number("--minutes", "20"),
  SHOAL_FUZZ_REPORT: report,
  ...(values.replay && { SHOAL_FUZZ_REPLAY: values.replay }),
};
const cli = here("../../apps/node/dist/cli.js");
if (!existsSync(cli)) fail(`${cli} is missing: build first (pnpm exec turbo run build)`);

process.stdout.write(
  `fuzz: seed ${seed}, ${env.SHOAL_FUZZ_FRAMES} frames, ${env.SHOAL_FUZZ_REQUESTS} requests, at most ${env.SHOAL_FUZZ_MINUTES} min${env.SHOAL_FUZZ_REPLAY ? `, replaying ${env.SHOAL_FUZZ_REPLAY}` : ""}\n`,
);
const vitest = spawnSync(process.execPath, [here("../../node_modules/vitest/vitest.mjs"), "run", "fuzz/fuzz.test.ts"], {
  cwd: here(".."),
  env,
  stdio: "inherit",
});
for (const file of [report, `${report}.replay`]) {
  if (!existsSync(file)) continue;
  process.stdout.write(`\n${readFileSync(file, "utf8")}`);
  rmSync(file);
}
process.exit(vitest.status ?? 1);
