import fc from "fast-check";
import { type Finding, type Findings, show } from "./Findings.js";
import type { FuzzMesh } from "./FuzzMesh.js";
import { type Session, framesOf, session } from "./frameArbs.js";
import { pack } from "./frameBytes.js";
import { type HttpInput, type RawInput, httpInput, rawInput, unknownRouteInput } from "./httpArbs.js";
import { type HttpAnswer, methodOf, mayGoUnanswered, requestBytes, sendHttp, sendRaw } from "./httpRequest.js";
import { runSession } from "./meshPeer.js";

/**
 * The fuzz loop, the same for the CI test and the long run; only the budgets differ. Inputs are
 * drawn in rounds of `RUNS_PER_ROUND`, round r with seed `seed + r`, so that any input is named
 * by (part, seed, fast-check path) and can be replayed alone. The first input that shows a new
 * problem is shrunk (for at most `shrinkMs`) to a smaller one showing the same problem; later
 * inputs showing a known problem are only counted.
 */

export interface Budget {
  seed: number;
  frames: number;
  requests: number;
  /** Wall-clock end of each part (ms since the epoch). */
  framesUntil: number;
  httpUntil: number;
  /** Time given to shrinking each new finding, and to all shrinking of one part. */
  shrinkMs: number;
  shrinkTotalMs: number;
  /** Called after each round, e.g. to print progress. */
  onRound?: (part: Finding["part"]) => void | Promise<void>;
}

const RUNS_PER_ROUND = 50;
/** A full health check (all alive, /healthz, mesh whole) after this many HTTP inputs; frames check after every session. */
const HTTP_CHECK_EVERY = 20;

/** The generator options are the same in every mode, so a path from one run replays in another. */
export const sessionArb = session({ maxHuge: 17 * 1024 * 1024, maxActions: 64, maxHoldMs: 600 });
export type HttpFuzzInput = { t: "req"; input: HttpInput } | { t: "raw"; input: RawInput };
export const httpArb: fc.Arbitrary<HttpFuzzInput> = fc.oneof(
  { weight: 16, arbitrary: httpInput.map((input) => ({ t: "req" as const, input })) },
  { weight: 2, arbitrary: unknownRouteInput.map((input) => ({ t: "req" as const, input })) },
  { weight: 2, arbitrary: rawInput.map((input) => ({ t: "raw" as const, input })) },
);

interface Problem {
  signature: string;
  detail: string;
}

interface Probe<T> {
  part: Finding["part"];
  arb: fc.Arbitrary<T>;
  /** Runs one input against the mesh; `counting` is false while shrinking (nothing is tallied). */
  run(input: T, counting: boolean): Promise<Problem | undefined>;
  /** What to show of an input besides the input itself (the bytes or request actually sent). */
  describe?(input: T): string;
  done(): boolean;
}

/** Crashes since `before`, as a problem; the first one names it. */
function crashProblem(mesh: FuzzMesh, before: number, findings: Findings, counting: boolean): Problem | undefined {
  const crashes = mesh.crashesSince(before);
  if (!counting) findings.crashesWhileShrinking += crashes.length;
  const first = crashes[0];
  if (!first) return undefined;
  return { signature: `crash: ${first.signature}`, detail: `${first.node} exited with ${first.code}; stderr: ${first.stderrTail.slice(-1_200)}` };
}

async function campaign<T>(probe: Probe<T>, findings: Findings, seed: number, until: number, budget: Budget): Promise<void> {
  const stats = probe.part === "frames" ? findings.frames : findings.http;
  let shrinkLeft = budget.shrinkTotalMs;
  for (let round = 0; !probe.done() && Date.now() < until; round++) {
    stats.rounds++;
    const roundSeed = seed + round;
    let hunting: Problem | undefined;
    let shrinkEnd = 0;
    let huntStart = 0;
    let harnessError: unknown;
    const property = fc.asyncProperty(probe.arb, async (input) => {
      if (harnessError !== undefined) return true;
      try {
        if (hunting) {
          // Past the shrink budget every candidate "passes": fast-check keeps the smallest failing one so far.
          if (Date.now() > shrinkEnd) return true;
          const problem = await probe.run(input, false);
          if (problem && problem.signature !== hunting.signature && !findings.has(problem.signature)) {
            findings.add({ part: probe.part, signature: problem.signature, seed: roundSeed, shrinks: 0, input: describe(probe, input), detail: problem.detail });
          }
          if (problem?.signature !== hunting.signature) return true;
          hunting = problem;
          return false;
        }
        if (probe.done() || Date.now() > until) return true;
        const problem = await probe.run(input, true);
        if (!problem) return true;
        const known = findings.has(problem.signature);
        findings.add({ part: probe.part, signature: problem.signature, seed: roundSeed, shrinks: 0, input: describe(probe, input), detail: problem.detail });
        if (known) return true;
        hunting = problem;
        huntStart = Date.now();
        shrinkEnd = Math.min(huntStart + budget.shrinkMs, huntStart + shrinkLeft, until);
        return false;
      } catch (err) {
        harnessError = err;
        return true;
      }
    });
    const result = await fc.check(property, { seed: roundSeed, numRuns: RUNS_PER_ROUND });
    if (harnessError !== undefined) throw harnessError;
    if (hunting) shrinkLeft -= Date.now() - huntStart;
    await budget.onRound?.(probe.part);
    if (result.failed && hunting && result.counterexample) {
      findings.shrunk(hunting.signature, {
        path: result.counterexamplePath ?? undefined,
        shrinks: result.numShrinks,
        input: describe(probe, result.counterexample[0]),
        detail: hunting.detail,
      });
    }
  }
}

function describe<T>(probe: Probe<T>, input: T): string {
  return probe.describe ? `${show(input)}\n   sent: ${probe.describe(input)}` : show(input);
}

export function frameProbe(mesh: FuzzMesh, findings: Findings, budget: Budget): Probe<Session> {
  return {
    part: "frames",
    arb: sessionArb,
    done: () => findings.frames.units >= budget.frames,
    describe: (s) => {
      if (s.mode !== "pre" && s.mode !== "post") return s.mode;
      const first = s.actions.find((a) => a.k === "frame" || a.k === "mutated");
      return first ? `${s.mode} session; first frame as MessagePack: ${pack(first.frame).subarray(0, 120).toString("hex")}` : `${s.mode} session`;
    },
    async run(s, counting) {
      await mesh.ensureWhole();
      const before = mesh.crashes.length;
      const outcome = await runSession(s, { ids: mesh.ids, addresses: mesh.addresses });
      if (counting) {
        findings.frames.inputs++;
        findings.frames.units += Math.max(framesOf(s), outcome.sent);
        findings.handshakesRefused += outcome.handshakeFailed;
        for (const code of outcome.closes) findings.bump(findings.closeCodes, String(code));
        for (const status of outcome.refused) findings.bump(findings.closeCodes, `http ${status}`);
        for (const code of outcome.errors) findings.bump(findings.errorCodes, code);
      }
      const health = await mesh.check();
      if (!health.ok) await mesh.settle(1_000);
      mesh.forgetLogs();
      return crashProblem(mesh, before, findings, counting) ?? (health.ok ? undefined : { signature: health.problem ?? "unhealthy", detail: health.detail ?? "" });
    },
  };
}

/** `{"error":{"code":string,"message":string}}`? */
function hasErrorBody(answer: HttpAnswer): { code: string; message: string } | undefined {
  try {
    const error = (JSON.parse(answer.body) as { error?: { code?: unknown; message?: unknown } }).error;
    return typeof error?.code === "string" && typeof error.message === "string" ? { code: error.code, message: error.message } : undefined;
  } catch {
    return undefined;
  }
}

/** Blanks what varies between inputs (numbers, quoted values) so that one cause is one finding. */
const normalize = (message: string) => message.replace(/"[^"]*"|'[^']*'/g, "…").replace(/\d+/g, "N").slice(0, 70);

function judge(fuzz: HttpFuzzInput, answer: HttpAnswer, findings: Findings, counting: boolean): Problem | undefined {
  const req = fuzz.t === "req" ? fuzz.input : undefined;
  // The path template names a finding; the method, headers and body are in its input.
  const route = req ? (req.unknown ? "(unknown route)" : req.route.split(" ")[1]!) : "raw bytes";
  const detail = `${answer.status ?? answer.end} after ${answer.ms} ms; ${JSON.stringify(answer.headers)} ${answer.body.slice(0, 300)}`;
  if (counting) findings.bump(findings.statuses, String(answer.status ?? answer.end));
  if (answer.status === undefined) {
    if (fuzz.t === "raw" || (req && mayGoUnanswered(req, answer))) {
      if (counting) findings.unansweredAllowed++;
      return undefined;
    }
    // A node that drops a request it could answer.
    return { signature: `no answer (${answer.end}) [headers: ${req?.headers.k}, body: ${req?.body.k}]`, detail };
  }
  const error = hasErrorBody(answer);
  // Where the answer came from: the API (it has a content type), or the HTTP layer before any route.
  const source = answer.headers["content-type"] ? route : `before routing [headers: ${req?.headers.k ?? "raw"}]`;
  if (answer.status >= 500) {
    if ((answer.status === 503 || answer.status === 504) && error && error.code !== "SHOAL_ERR_INTERNAL") {
      if (counting) findings.bump(findings.meshUnavailable, `${answer.status} ${error.code}`);
      return undefined;
    }
    return { signature: `5xx ${answer.status} ${source} ${error?.code ?? "(no error body)"} ${normalize(error?.message ?? answer.body)}`, detail };
  }
  const head = req && methodOf(req).toUpperCase() === "HEAD";
  if (answer.status >= 400 && !error && !head) return { signature: `bodiless ${answer.status} ${source}`, detail };
  return undefined;
}

export function httpProbe(mesh: FuzzMesh, findings: Findings, budget: Budget): Probe<HttpFuzzInput> {
  let sinceCheck = 0;
  return {
    part: "http",
    arb: httpArb,
    done: () => findings.http.units >= budget.requests,
    describe: (fuzz) => {
      const bytes = fuzz.t === "req" ? requestBytes(fuzz.input, "127.0.0.1:PORT") : Buffer.from(fuzz.input.bytes as string, typeof fuzz.input.bytes === "string" ? "latin1" : undefined);
      return JSON.stringify(bytes.subarray(0, 400).toString("latin1")) + (bytes.length > 400 ? `…[${bytes.length} bytes]` : "");
    },
    async run(fuzz, counting) {
      await mesh.ensureWhole();
      const before = mesh.crashes.length;
      const port = mesh.nodes[fuzz.input.node]!.port;
      const answer = fuzz.t === "req" ? await sendHttp(port, fuzz.input) : await sendRaw(port, fuzz.input);
      if (counting) {
        findings.http.inputs++;
        findings.http.units++;
      }
      const problem = judge(fuzz, answer, findings, counting);
      // A node that died shows first as a reset or a refused request, a moment before its exit.
      if ((answer.status === undefined || answer.status >= 500) && !(await mesh.answers(fuzz.input.node))) await mesh.settle(1_000);
      let health: Awaited<ReturnType<FuzzMesh["check"]>> = { ok: true };
      if (mesh.anyDead() || ++sinceCheck >= HTTP_CHECK_EVERY || !counting) {
        sinceCheck = 0;
        health = await mesh.check();
        mesh.forgetLogs();
      }
      return crashProblem(mesh, before, findings, counting) ?? problem ?? (health.ok ? undefined : { signature: health.problem ?? "unhealthy", detail: health.detail ?? "" });
    },
  };
}

export async function fuzzFrames(mesh: FuzzMesh, findings: Findings, budget: Budget): Promise<void> {
  await campaign(frameProbe(mesh, findings, budget), findings, budget.seed, budget.framesUntil, budget);
}

export async function fuzzHttp(mesh: FuzzMesh, findings: Findings, budget: Budget): Promise<void> {
  // Another seed than the frames', so the two parts do not draw in lockstep.
  await campaign(httpProbe(mesh, findings, budget), findings, budget.seed + 1_000_000, budget.httpUntil, budget);
}

/** Runs the one input at `path` of the round of `seed`, and tells what it does. */
export async function replay(mesh: FuzzMesh, findings: Findings, part: Finding["part"], seed: number, path: string): Promise<string> {
  const budget: Budget = { seed, frames: Number.POSITIVE_INFINITY, requests: Number.POSITIVE_INFINITY, framesUntil: Number.POSITIVE_INFINITY, httpUntil: Number.POSITIVE_INFINITY, shrinkMs: 0, shrinkTotalMs: 0 };
  const lines: string[] = [];
  const run = async <T>(probe: Probe<T>) => {
    // The value at that path of the round's draws (shrinks included), run once.
    const [input] = fc.sample(probe.arb, { seed, path, numRuns: 1 });
    if (input === undefined) throw new Error(`no input at path ${path} of seed ${seed}`);
    const problem = await probe.run(input, true);
    lines.push(`input: ${describe(probe, input)}`, problem ? `problem: ${problem.signature}\n${problem.detail}` : "no problem: the node handled it");
    if (problem) findings.add({ part, signature: problem.signature, seed, path, shrinks: 0, input: describe(probe, input), detail: problem.detail });
  };
  if (part === "frames") await run(frameProbe(mesh, findings, budget));
  else await run(httpProbe(mesh, findings, budget));
  return lines.join("\n");
}
