// Adds up the vitest JSON reports of every workspace package that has tests and prints
// "N passed, N failed" as the last line. A package whose report is missing (its tests could not
// even start) counts as one failure, so a broken package can never look green.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const roots = ["packages", "apps"].flatMap((dir) => readdirSync(dir).map((name) => join(dir, name))).concat(["test"]);
let passed = 0;
let failed = 0;
for (const dir of roots) {
  const pkgFile = join(dir, "package.json");
  if (!existsSync(pkgFile) || !JSON.parse(readFileSync(pkgFile, "utf8")).scripts?.test) continue;
  const report = join(dir, ".vitest-results", "results.json");
  if (!existsSync(report)) {
    console.log(`${dir}: no test report (its tests did not run)`);
    failed++;
    continue;
  }
  const r = JSON.parse(readFileSync(report, "utf8"));
  // Files that failed to load count as failures too.
  const brokenFiles = (r.testResults ?? []).filter((f) => f.status === "failed" && (f.assertionResults ?? []).length === 0).length;
  console.log(`${dir}: ${r.numPassedTests} passed, ${r.numFailedTests + brokenFiles} failed`);
  passed += r.numPassedTests;
  failed += r.numFailedTests + brokenFiles;
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
