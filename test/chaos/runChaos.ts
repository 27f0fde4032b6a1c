import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { type ApiAnswer, type NodeProcess, apiCall, tempDir } from "../support/shoalProcess.js";
import type { FaultSchedule } from "./faultSchedules.js";
import { NodeKeeper } from "./NodeKeeper.js";
import { ProxiedMesh } from "./ProxiedMesh.js";

export const CHAOS_PLUGIN = resolve(import.meta.dirname, "../fixtures/plugins/chaosSteps.mjs");

export interface ChaosPlan {
  /** The row's name, e.g. "(a) churn". */
  run: string;
  nodes: number;
  workflows: number;
  /** Submissions a second, through a random node that is up. */
  perSecond: number;
  /** How long each of the four steps runs. */
  stepMs: number;
  /** How long to keep polling after the fault phase for every workflow to end. */
  pollMs: number;
  /** Flags for every node (besides the plugin). */
  extra?: string[];
  faults: FaultSchedule;
  seed: number;
}

export interface ChaosReport {
  run: string;
  nodes: number;
  seed: number;
  /** Faults begun (kills, stops, partitions, slow links). */
  faults: number;
  accepted: number;
  /** Submissions not answered 202, by status ("no answer" for a timeout or a reset). */
  refused: Record<string, number>;
  /** Accepted workflows seen ended (complete, partial or failed) at some point. */
  terminal: number;
  complete: number;
  /** Accepted workflows that no node answered for at the end (every node 404, 503 or silent). */
  lost: number;
  /** Ended workflows whose outcome read differently later (another status or result). */
  takenTwice: number;
  /** Ended workflows read as running again later. */
  readBackRunning: number;
  /** Accepted workflows that a node that was up answered 404 for at some point (404 is for ids no node ever accepted). */
  answered404: number;
  /** Step keys that started more than once, and that ran to their end more than once. */
  stepsRerun: number;
  stepsEndedTwice: number;
  failedStarts: number;
  /** From the moment the last fault was undone to the moment every accepted workflow had ended; undefined if some never did. */
  lastFaultToTerminalMs: number | undefined;
  /** What happened, in order, and examples of each problem. */
  notes: string[];
}

interface Tracked {
  id: string;
  acceptedAt: number;
  /** Its owner, as the last state read said (at first the node that accepted it). */
  owner: string;
  outcome?: { digest: string; status: string; at: number; node: string };
  checkedAt: number;
  changed: string[];
  reverted: string[];
  /** 404s from nodes that were up, after the workflow was accepted. */
  notFound: string[];
}

/** How often an ended workflow is read again from every node, to catch a changed outcome. */
const RECHECK_MS = 2_000;
const POLL_CONCURRENCY = 8;
/** How long the final sweep keeps asking for a workflow no node answered for. */
const SWEEP_RETRY_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** A seeded PRNG (mulberry32): the same seed picks the same nodes and sides. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** JSON with sorted keys: two nodes' copies of one outcome compare equal whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** What a client may rely on in an outcome: the status and every step's output (each names the execution that made it). */
const digestOf = (result: { status: string; result: unknown; steps_completed: number; steps_failed: number }) =>
  canonical({ status: result.status, result: result.result, completed: result.steps_completed, failed: result.steps_failed });

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

const call = (node: NodeProcess, method: string, path: string, body?: unknown, timeoutMs = 3_000): Promise<ApiAnswer | undefined> =>
  apiCall(node.address, method, path, { ...node.client, body, timeoutMs }).catch(() => undefined);

const fourSteps = (name: string, ms: number) => ({
  name,
  steps: ["s1", "s2", "s3", "s4"].map((id, i) => ({ id, tool: "chaos_step", input: { ms }, ...(i > 0 && { needs: [`s${i}`] }) })),
});

/** Reads a workflow's outcome from one node and checks it against what was read before. */
async function check(w: Tracked, node: NodeProcess): Promise<void> {
  w.checkedAt = performance.now();
  // With what the node said: which rule answered 404 is the first thing to know about one.
  const notFound = (answer: { json?: any } | undefined) =>
    w.notFound.push(`${node.name} at +${((performance.now() - w.acceptedAt) / 1000).toFixed(1)}s (${String(answer?.json?.error?.message ?? "").slice(0, 160)})`);
  if (!w.outcome) {
    // Not ended yet as far as we know: the state says who owns it now, and whether to read the result.
    const state = await call(node, "GET", `/v1/workflows/${w.id}`);
    if (state?.status === 404) notFound(state);
    if (state?.status !== 200 || !state.json) return;
    w.owner = state.json.owner;
    if (state.json.status === "running") return;
  }
  const r = await call(node, "GET", `/v1/workflows/${w.id}/result`);
  if (r?.status === 404) notFound(r);
  if (r?.status === 409 && w.outcome) w.reverted.push(`${node.name} says running after ${w.outcome.node} said ${w.outcome.status}`);
  if (r?.status !== 200 || !r.json) return;
  const digest = digestOf(r.json);
  if (!w.outcome) w.outcome = { digest, status: r.json.status, at: performance.now(), node: node.name };
  else if (digest !== w.outcome.digest) w.changed.push(`${node.name} says ${r.json.status} ${digest.slice(0, 200)} after ${w.outcome.node} said ${w.outcome.digest.slice(0, 200)}`);
}

/** What the nodes logged about one workflow: the evidence under a problem in the notes. */
function evidence(nodes: NodeProcess[], id: string, max = Number(process.env.SHOAL_CHAOS_EVIDENCE_LINES || 12)): string[] {
  const lines: { time: number; text: string }[] = [];
  for (const node of nodes) {
    for (const l of node.logs) {
      if (!JSON.stringify(l).includes(id)) continue;
      const { level, time, pid, node: _n, component, msg, workflowId, ...rest } = l as Record<string, unknown>;
      lines.push({ time: Number(time), text: `    ${node.name} pid ${pid}: ${msg} ${JSON.stringify(rest).slice(0, 240)}` });
    }
  }
  return lines
    .sort((a, b) => a.time - b.time)
    .slice(0, max)
    .map((l) => l.text);
}

/** What chaos_step recorded of one workflow's steps: where each execution ran and whether it ran out. */
function stepRecords(dir: string, id: string): string[] {
  const file = join(dir, `${id}.log`);
  if (!existsSync(file)) return ["    (no step of it ran)"];
  return readFileSync(file, "utf8").trim().split("\n").map((line) => `    step ${line}`);
}

/** Step keys by how often they started and how often they ran to their end, from the plugin's records. */
function stepRuns(dir: string): { rerun: string[]; endedTwice: string[] } {
  const starts = new Map<string, number>();
  const ends = new Map<string, number>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".log"))) {
    for (const line of readFileSync(join(dir, file), "utf8").split("\n")) {
      if (!line) continue;
      const { key, ev } = JSON.parse(line) as { key: string; ev: string };
      const counts = ev === "start" ? starts : ends;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  const over = (m: Map<string, number>) => [...m].filter(([, n]) => n > 1).map(([k, n]) => `${k} x${n}`);
  return { rerun: over(starts), endedTwice: over(ends) };
}

/**
 * One chaos run against a fresh mesh of real nodes behind a fault proxy: submits `workflows`
 * four-step workflows at `perSecond` through random nodes that are up while the fault schedule
 * runs, polls them all the while (and then for up to `pollMs`), then asks every node for every
 * workflow, and tallies what a client would have seen.
 */
export async function runChaos(plan: ChaosPlan): Promise<ChaosReport> {
  const dir = tempDir("chaos-");
  const t0 = performance.now();
  const notes: string[] = [];
  const note = (what: string) => notes.push(`+${((performance.now() - t0) / 1000).toFixed(1)}s ${what}`);
  const names = Array.from({ length: plan.nodes }, (_, i) => `c${i + 1}`);
  const mesh = await ProxiedMesh.start(
    names.map((name) => ({ name })),
    { extra: ["--plugin", CHAOS_PLUGIN, "--log-level", process.env.SHOAL_CHAOS_LOG_LEVEL || "info", ...(plan.extra ?? [])], env: { SHOAL_CHAOS_DIR: dir } },
  );
  const keeper = new NodeKeeper(mesh.nodes);
  const random = seededRandom(plan.seed);
  const tracked: Tracked[] = [];
  const refused: Record<string, number> = {};
  note(`mesh of ${plan.nodes} up`);
  // Faults begin on a mesh that has run a moment: until each node counts the others towards a
  // majority, a split runs on both sides by design.
  await mesh.counted(20_000);
  note(`each node counts all ${plan.nodes} towards a majority`);
  try {
    const durationMs = (plan.workflows / plan.perSecond) * 1000;
    const startedAt = performance.now();
    let lastHealAt = startedAt;
    let phaseOver = false;
    let hits = 0;
    const hit = (what: string) => {
      hits++;
      note(what);
    };
    const busiest = () => {
      const running = new Map<string, number>();
      for (const w of tracked) if (!w.outcome) running.set(w.owner, (running.get(w.owner) ?? 0) + 1);
      return running;
    };
    const faults = plan.faults({ mesh, keeper, random, startedAt, durationMs, healed: () => (lastHealAt = performance.now()), note, hit, running: busiest });

    const submissions: Promise<void>[] = [];
    const submitAll = (async () => {
      for (let i = 0; i < plan.workflows; i++) {
        await sleep(startedAt + (i * 1000) / plan.perSecond - performance.now());
        const fit = keeper.fit();
        const node = fit[Math.floor(random() * fit.length)];
        if (!node) {
          refused["no node up"] = (refused["no node up"] ?? 0) + 1;
          continue;
        }
        submissions.push(
          call(node, "POST", "/v1/workflows", fourSteps(`chaos-${i}`, plan.stepMs), 10_000).then((r) => {
            if (r?.status === 202 && typeof r.json?.workflow_id === "string") tracked.push({ id: r.json.workflow_id, acceptedAt: performance.now(), owner: node.name, checkedAt: 0, changed: [], reverted: [], notFound: [] });
            else {
              const why = r ? String(r.status) : "no answer";
              refused[why] = (refused[why] ?? 0) + 1;
            }
          }),
        );
      }
      await Promise.all(submissions);
    })();

    let pollUntil = Number.POSITIVE_INFINITY;
    const allEnded = () => tracked.every((w) => w.outcome);
    const polling = (async () => {
      while (performance.now() < pollUntil && !(phaseOver && allEnded())) {
        const now = performance.now();
        const due = tracked.filter((w) => !w.outcome || now - w.checkedAt > RECHECK_MS);
        // Every node is asked: a second owner's copy shows only on the node that holds it.
        await mapLimit(due, POLL_CONCURRENCY, async (w) => {
          for (const node of keeper.fit()) await check(w, node);
        });
        await sleep(100);
      }
    })();

    await Promise.all([faults, submitAll]);
    phaseOver = true;
    pollUntil = performance.now() + plan.pollMs;
    note(`fault phase over: ${tracked.length} accepted`);
    await polling;
    note(allEnded() ? "every accepted workflow ended" : `${tracked.filter((w) => !w.outcome).length} never ended`);

    // The sweep, once every node is up again and sees the others up: every node asked for every
    // workflow. One that no node answers for is asked again for a while (a node that has just
    // started answers /healthz a moment before it has taken its store back) before it is lost.
    await Promise.race([keeper.settled(), sleep(30_000)]);
    keeper.stop();
    const fit = keeper.fit();
    await mesh.whole(fit, 30_000).catch(() => note("the mesh was not whole for the sweep"));
    const firstAnswers = new Map<Tracked, string>();
    let missing = tracked;
    const sweepUntil = performance.now() + SWEEP_RETRY_MS;
    do {
      const still: Tracked[] = [];
      await mapLimit(missing, POLL_CONCURRENCY, async (w) => {
        const answers: string[] = [];
        for (const node of fit) {
          const r = await call(node, "GET", `/v1/workflows/${w.id}/result`);
          answers.push(`${node.name}:${r?.status ?? "none"}`);
          if (r?.status === 200 || r?.status === 409) await check(w, node);
        }
        if (answers.some((a) => a.endsWith(":200") || a.endsWith(":409"))) return;
        still.push(w);
        if (!firstAnswers.has(w)) firstAnswers.set(w, answers.join(" "));
      });
      missing = still;
      if (missing.length > 0) await sleep(500);
    } while (missing.length > 0 && performance.now() < sweepUntil);
    if (firstAnswers.size > 0) note(`sweep: ${firstAnswers.size} unanswered at first, ${missing.length} after ${SWEEP_RETRY_MS / 1000} s`);
    const lost = missing.length;
    for (const w of tracked.filter((t) => !t.outcome).slice(0, 3)) notes.push(`never ended ${w.id} (owner ${w.owner})`, ...stepRecords(dir, w.id), ...evidence(mesh.nodes, w.id));
    for (const w of missing.slice(0, 5)) {
      notes.push(`lost ${w.id} (${firstAnswers.get(w)})${w.outcome ? `, read ${w.outcome.status} from ${w.outcome.node} before` : ""}`, ...evidence(mesh.nodes, w.id));
    }

    const ended = tracked.filter((w) => w.outcome);
    const changed = tracked.filter((w) => w.changed.length > 0);
    const reverted = tracked.filter((w) => w.reverted.length > 0);
    for (const w of changed.slice(0, 5)) notes.push(`taken twice ${w.id}: ${w.changed[0]}`, ...evidence(mesh.nodes, w.id));
    for (const w of reverted.slice(0, 5)) notes.push(`read back running ${w.id}: ${w.reverted[0]}`, ...evidence(mesh.nodes, w.id));
    for (const w of tracked.filter((t) => t.notFound.length > 0).slice(0, 3)) notes.push(`404 for ${w.id} from ${w.notFound.slice(0, 4).join(", ")}`, ...evidence(mesh.nodes, w.id));
    const steps = stepRuns(dir);
    for (const key of steps.endedTwice.slice(0, 5)) notes.push(`ended twice ${key}`);
    for (const f of keeper.failedStarts.slice(0, 5)) notes.push(`failed start ${f.node}: ${f.why.slice(0, 300)}`);
    const lastEnd = Math.max(...ended.map((w) => (w.outcome as { at: number }).at), lastHealAt);
    return {
      run: plan.run,
      nodes: plan.nodes,
      seed: plan.seed,
      faults: hits,
      accepted: tracked.length,
      refused,
      terminal: ended.length,
      complete: ended.filter((w) => w.outcome?.status === "complete").length,
      lost,
      takenTwice: changed.length,
      readBackRunning: reverted.length,
      answered404: tracked.filter((w) => w.notFound.length > 0).length,
      stepsRerun: steps.rerun.length,
      stepsEndedTwice: steps.endedTwice.length,
      failedStarts: keeper.failedStarts.length,
      lastFaultToTerminalMs: ended.length === tracked.length ? Math.max(0, lastEnd - lastHealAt) : undefined,
      notes,
    };
  } finally {
    keeper.stop();
    await mesh.close();
  }
}

/** The table the runs print: a header, then one row per report. */
export function chaosTable(reports: ChaosReport[]): string {
  const header = ["run", "nodes", "faults", "accepted", "refused", "terminal", "complete", "lost", "taken twice", "read back running", "404 from a live node", "steps re-run", "steps ended twice", "failed starts", "last fault -> all terminal"];
  const rows = reports.map((r) => [
    r.run,
    r.nodes,
    r.faults,
    r.accepted,
    Object.values(r.refused).reduce((a, b) => a + b, 0),
    r.terminal,
    r.complete,
    r.lost,
    r.takenTwice,
    r.readBackRunning,
    r.answered404,
    r.stepsRerun,
    r.stepsEndedTwice,
    r.failedStarts,
    r.lastFaultToTerminalMs === undefined ? `not all (${r.accepted - r.terminal} never ended)` : `${(r.lastFaultToTerminalMs / 1000).toFixed(1)} s`,
  ]);
  const line = (cells: unknown[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** The table and, under it, each run's seed, refusals and notes. */
export function chaosReportText(reports: ChaosReport[]): string {
  const details = reports.map((r) =>
    [`${r.run}: seed ${r.seed}, refused ${JSON.stringify(r.refused)}`, ...r.notes.map((n) => `  ${n}`)].join("\n"),
  );
  return [chaosTable(reports), "", ...details].join("\n");
}
