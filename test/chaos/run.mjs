#!/usr/bin/env node
// The long chaos runs (`npm run chaos`): the same test file as the bounded part in `npm test`
// (chaos.test.ts), run by vitest with SHOAL_CHAOS_LONG=1, then its table printed. See README.md.
//
//   npm run chaos -- [--only a,b,c,d] [--seed N]
//
// Exits 0 when every run met the targets (0 lost, 0 taken twice, all terminal within 60 s of
// the last fault, every node started again), 1 otherwise; the table is printed either way.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
function fail(message) {
  process.stderr.write(`chaos: ${message}\n`);
  process.exit(2);
}
let values;
try {
  ({ values } = parseArgs({ options: { only: { type: "string" }, seed: { type: "string" } }, strict: true }));
} catch (err) {
  fail(err.message);
}
const only = values.only;
if (only && !/^[abcd](,[abcd])*$/.test(only)) fail(`--only wants runs out of a,b,c,d, got ${only}`);
// A seed of its own for each run unless one is given, printed so that the run can be repeated.
const seed = values.seed ?? String(Date.now() % 1_000_000_000);
if (!/^\d+$/.test(seed)) fail(`--seed wants a number, got ${seed}`);
const cli = here("../../apps/node/dist/cli.js");
if (!existsSync(cli)) fail(`${cli} is missing: build first (pnpm exec turbo run build)`);

const report = join(tmpdir(), `shoal-chaos-${process.pid}.txt`);
process.stdout.write(`chaos: seed ${seed}, runs ${only ?? "a,b,c,d"}\n`);
const vitest = spawnSync(process.execPath, [here("../../node_modules/vitest/vitest.mjs"), "run", "chaos/chaos.test.ts"], {
  cwd: here(".."),
  env: { ...process.env, SHOAL_CHAOS_LONG: "1", SHOAL_CHAOS_SEED: seed, SHOAL_CHAOS_REPORT: report, ...(only && { SHOAL_CHAOS_ONLY: only }) },
  stdio: "inherit",
});
if (existsSync(report)) {
  process.stdout.write(`\n${readFileSync(report, "utf8")}`);
  rmSync(report);
}
process.exit(vitest.status ?? 1);
