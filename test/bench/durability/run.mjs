#!/usr/bin/env node
// Durability benchmark: how long a running step goes without anyone running it
//   - when its owner (the node that accepted the workflow) crashes (SIGKILL) or hangs (SIGSTOP):
//     the owner's backup peer takes the workflow over and runs the step again;
//   - when its host (the node running the step) does: the owner places the step elsewhere;
// all in the same run, with the default and the fast failure detector. See README.md.
//
//   node test/bench/durability/run.mjs [--repeats N]
//
// Every node is a real `shoal node` process. Exits 0 whether or not the targets are met (the
// output is a report); 1 when something broke.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { option } from "../lib/args.mjs";
import { exited, kill, runMain, track } from "../lib/children.mjs";
import { freePort, getJson, outputTail } from "../lib/shoal-node.mjs";
import { median } from "../lib/stats.mjs";
import { table, verdict } from "../lib/table.mjs";
import { sleep, until } from "../lib/until.mjs";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const CLI = here("../../../apps/node/dist/cli.js");
const PLUGIN = here("../../fixtures/plugins/actors.mjs");
const DETECTORS = {
  default: { heartbeatMs: 500, suspectAfterMs: 1_200, downAfterMs: 2_000 },
  fast: { heartbeatMs: 100, suspectAfterMs: 300, downAfterMs: 600 },
};
const SLACK_MS = 200; // the target: detection + this, as for actors (test/bench/actors)
const log = (line) => process.stderr.write(`[bench] ${line}\n`);

async function startNode({ name, dir, slots, join: seeds, detector }) {
  const port = await freePort();
  const d = DETECTORS[detector];
  const args = [
    CLI, "node", "--name", name, "--host", "127.0.0.1", "--port", String(port), "--data-dir", join(dir, name),
    "--slots", String(slots), "--plugin", PLUGIN, "--log-level", "warn",
    "--heartbeat-ms", String(d.heartbeatMs), "--suspect-after-ms", String(d.suspectAfterMs), "--down-after-ms", String(d.downAfterMs),
    ...(seeds ? ["--join", seeds] : []),
  ];
  const child = track(spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SHOAL_TEST_DIR: dir } }), name);
  const output = outputTail(child);
  await until(async () => (await getJson(port, "/healthz"))?.ok === true || exited(child), 20_000, `${name} ready`, 20);
  if (exited(child)) throw new Error(`${name} exited before it was ready:\n${output()}`);
  return { name, child, port, address: `127.0.0.1:${port}` };
}

const runsOf = (dir, step) =>
  existsSync(join(dir, "steps.log"))
    ? readFileSync(join(dir, "steps.log"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
        .filter((l) => l.step === step && !l.end)
    : [];

/**
 * The target: detection + slack. A crash is seen when a redial is refused, a hang only by silence,
 * checked once per heartbeat round (as in test/bench/actors).
 */
function budgetOf({ signal, detector }) {
  const d = DETECTORS[detector];
  return (signal === "SIGKILL" ? d.downAfterMs : d.downAfterMs + d.heartbeatMs) + SLACK_MS;
}

/** One failover: signals the owner or the step's host while the step runs; ms until it runs again. */
async function failoverOnce({ victim, signal, detector }) {
  const dir = mkdtempSync(join(tmpdir(), "shoal-durability-"));
  const nodes = [];
  try {
    const owner = await startNode({ name: "owner", dir, slots: 0, detector });
    nodes.push(owner);
    for (const name of ["host1", "host2"]) nodes.push(await startNode({ name, dir, slots: 4, join: owner.address, detector }));
    await until(async () => (await getJson(owner.port, "/v1/nodes"))?.nodes?.filter((n) => n.status === "up").length === 3, 10_000, "mesh up", 20);
    const spec = {
      name: "failover",
      steps: [
        { id: "first", tool: "sleep_tool", input: { ms: 10 } },
        { id: "second", tool: "sleep_tool", needs: ["first"], input: { ms: 20_000 }, retries: 0 },
      ],
    };
    const res = await fetch(`http://${owner.address}/v1/workflows`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(spec) });
    if (res.status !== 202) throw new Error(`workflow refused: ${res.status} ${await res.text()}`);
    const { workflow_id: id } = await res.json();
    const [first] = await until(() => (runsOf(dir, "second").length === 1 ? runsOf(dir, "second") : undefined), 10_000, "second started", 2);
    await sleep(200); // first's outcome reaches the backup within the 20 ms batching; leave room
    const target = victim === "owner" ? owner : nodes.find((n) => n.name === first.node);
    const survivor = nodes.find((n) => n !== owner && n !== target);
    const killedAt = performance.now();
    target.child.kill(signal);
    await until(() => runsOf(dir, "second").length >= 2, 15_000, "second running again", 2);
    const rerunMs = performance.now() - killedAt;
    const state = await until(() => getJson(survivor.port, `/v1/workflows/${id}`), 5_000, "state from a survivor", 20);
    return { rerunMs, owner: state.owner, from: first.node };
  } finally {
    await Promise.all(nodes.map((n) => kill(n.child)));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const repeats = Number(option(process.argv.slice(2), "--repeats") ?? 3);
  const cases = [];
  for (const signal of ["SIGKILL", "SIGSTOP"]) {
    for (const detector of Object.keys(DETECTORS)) for (const victim of ["host", "owner"]) cases.push({ victim, signal, detector });
  }
  const runs = new Map(cases.map((c) => [c, []]));
  for (let rep = 0; rep < repeats; rep++) {
    // Rotate the order: no case always runs first.
    for (const c of cases.map((_, i) => cases[(i + rep) % cases.length])) {
      const r = await failoverOnce(c);
      runs.get(c).push(r);
      log(`${c.victim} ${c.signal}, ${c.detector}: step running again after ${r.rerunMs.toFixed(1)} ms; owner now ${r.owner}`);
    }
  }
  const rows = [["metric", "value", "runs (ms)", "target"]];
  const verdicts = [];
  for (const c of cases) {
    const ms = runs.get(c).map((r) => r.rerunMs);
    const budget = budgetOf(c);
    const d = DETECTORS[c.detector];
    rows.push([
      `${c.victim} ${c.signal === "SIGKILL" ? "killed" : "hung"} (${c.signal}), ${c.detector} ${d.heartbeatMs}/${d.suspectAfterMs}/${d.downAfterMs}: step running again (ms)`,
      median(ms).toFixed(1),
      ms.map((v) => v.toFixed(0)).join(" "),
      `<= ${budget}`,
    ]);
    verdicts.push(verdict(`${c.victim} ${c.signal} ${c.detector}`, median(ms) <= budget, `median ${median(ms).toFixed(1)} ms, target <= ${budget} ms (detection + ${SLACK_MS})`));
    if (c.victim === "owner") {
      const owners = new Set(runs.get(c).map((r) => r.owner));
      if (owners.has("owner")) throw new Error(`after the owner was killed, a survivor still named it the owner: ${[...owners]}`);
    }
  }
  const medianOf = (victim, signal, detector) => median(runs.get(cases.find((c) => c.victim === victim && c.signal === signal && c.detector === detector)).map((r) => r.rerunMs));
  console.log(table(rows));
  console.log("");
  for (const signal of ["SIGKILL", "SIGSTOP"]) {
    for (const detector of Object.keys(DETECTORS)) {
      console.log(`${signal} ${detector}: owner failover / host failover = ${(medianOf("owner", signal, detector) / medianOf("host", signal, detector)).toFixed(2)}x`);
    }
  }
  console.log("");
  for (const v of verdicts) console.log(v);
}

runMain(main);
