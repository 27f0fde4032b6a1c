import { RSS_WINDOW_MS, type SlotStats, rssGrowth } from "./FuzzMesh.js";

/** One distinct problem: the first input that showed it, shrunk, and how to replay it. */
export interface Finding {
  part: "frames" | "http";
  signature: string;
  /** How often inputs showed it (shrinking replays not counted). */
  count: number;
  seed: number;
  /** fast-check's counterexample path within the round of `seed`; undefined when not shrunk. */
  path?: string;
  shrinks: number;
  /** The (shrunk) input, printable. */
  input: string;
  /** What the node did: stderr of a crash, the answer of a request. */
  detail: string;
}

export interface PartStats {
  inputs: number;
  /** Frames for the frame part, requests for the HTTP part. */
  units: number;
  rounds: number;
}

/** Everything a run saw; `table()` is what `npm run fuzz` prints. */
export class Findings {
  readonly findings = new Map<string, Finding>();
  readonly frames: PartStats = { inputs: 0, units: 0, rounds: 0 };
  readonly http: PartStats = { inputs: 0, units: 0, rounds: 0 };
  readonly statuses = new Map<string, number>();
  readonly closeCodes = new Map<string, number>();
  readonly errorCodes = new Map<string, number>();
  /** 503/504 answers with an error code of their own: mesh conditions, not findings. */
  readonly meshUnavailable = new Map<string, number>();
  /** Requests a node may leave unanswered (a lying length, an over-limit body, ?wait=1). */
  unansweredAllowed = 0;
  crashesWhileShrinking = 0;
  handshakesRefused = 0;
  started = Date.now();
  ended = Date.now();

  constructor(readonly seed: number) {}

  bump(map: Map<string, number>, key: string, by = 1): void {
    map.set(key, (map.get(key) ?? 0) + by);
  }

  has(signature: string): boolean {
    return this.findings.has(signature);
  }

  /** Counts one more occurrence; the first one is kept as the finding's input. */
  add(finding: Omit<Finding, "count">): void {
    const known = this.findings.get(finding.signature);
    if (known) known.count++;
    else this.findings.set(finding.signature, { ...finding, count: 1 });
  }

  /** Replaces a finding's input with its shrunk form. */
  shrunk(signature: string, update: Pick<Finding, "path" | "shrinks" | "input" | "detail">): void {
    const known = this.findings.get(signature);
    if (known) Object.assign(known, update);
  }

  count(kind: "5xx" | "bodiless" | "crash" | "other", part?: Finding["part"]): number {
    let n = 0;
    for (const f of this.findings.values()) {
      if (part && f.part !== part) continue;
      if (kindOf(f.signature) === kind) n += f.count;
    }
    return n;
  }

  table(slots: SlotStats[], targets: { rssGrowthMb: number }): string {
    const mb = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");
    const rows = [
      ["node", "crashes", "restarts", "RSS first MB", "RSS start MB", "RSS warm MB", "RSS end MB", "growth MB", "RSS last MB", "since start MB", "peak MB", "heap used warm/end", "heap total warm/end", "external warm/end", "at rest before/after MB"],
      ...slots.map((s) => [
        s.name,
        String(s.crashes),
        String(s.restarts),
        mb(s.firstRssMb),
        mb(s.startRssMb),
        mb(rssGrowth(s).warm),
        mb(rssGrowth(s).end),
        mb(rssGrowth(s).growth),
        mb(s.lastRssMb),
        mb(s.lastRssMb - s.startRssMb),
        mb(s.peakRssMb),
        `${mb(s.settledHeap.heapUsed)}/${mb(s.lastHeap.heapUsed)}`,
        `${mb(s.settledHeap.heapTotal)}/${mb(s.lastHeap.heapTotal)}`,
        `${mb(s.settledHeap.external)}/${mb(s.lastHeap.external)}`,
        `${mb(s.restBeforeMb)}/${mb(s.restAfterMb)}`,
      ]),
    ];
    const growth = Math.max(...slots.map((s) => rssGrowth(s).growth));
    const crashes = slots.reduce((n, s) => n + s.crashes, 0);
    const lines = [
      `shoal fuzz: seed ${this.seed}, ${((this.ended - this.started) / 1000).toFixed(0)} s`,
      `frames: ${this.frames.units} frames in ${this.frames.inputs} sessions (${this.frames.rounds} rounds); handshakes refused ${this.handshakesRefused}`,
      `http: ${this.http.units} requests (${this.http.rounds} rounds); answered 503/504 by mesh conditions: ${sum(this.meshUnavailable)}; allowed unanswered: ${this.unansweredAllowed}`,
      "",
      align(rows),
      `(warm: median RSS of the ${RSS_WINDOW_MS / 1000} s (a third of a shorter run) after the warm-up (README), or after the start of a process that started after it; end: median of the run's last ${RSS_WINDOW_MS / 1000} s (or third); growth: end minus warm; last: the last sample; since start: last minus start of the process now in the slot; heap and external: V8's, from the node's /metrics, MB; at rest: after the mesh sat idle for a while before the first input and after the last, long run only)`,
      "",
      `crashes ${crashes} (${this.crashesWhileShrinking} while shrinking)   5xx ${this.count("5xx")}   bodiless errors ${this.count("bodiless")}   other findings ${this.count("other")}`,
      `targets: ${verdict(crashes === 0, "0 crashes")}, ${verdict(this.count("5xx") === 0, "0 5xx")}, ${verdict(this.count("bodiless") === 0, "0 bodiless errors")}, ${verdict(growth < targets.rssGrowthMb, `RSS growth < ${targets.rssGrowthMb} MB per node`)}`,
      "",
      `status codes: ${[...this.statuses].sort().map(([k, v]) => `${k}:${v}`).join(" ")}`,
      `close codes from nodes: ${[...this.closeCodes].sort().map(([k, v]) => `${k}:${v}`).join(" ")}`,
      `error frames from nodes: ${[...this.errorCodes].sort().map(([k, v]) => `${k}:${v}`).join(" ")}`,
      `mesh 503/504: ${[...this.meshUnavailable].map(([k, v]) => `${k}:${v}`).join(" ") || "none"}`,
      "",
      `${this.findings.size} distinct findings${this.findings.size ? ":" : ""}`,
    ];
    for (const [i, f] of [...this.findings.values()].entries()) {
      lines.push(
        "",
        `${i + 1}. [${f.part}] ${f.signature}  (x${f.count})`,
        `   input${f.path === undefined ? "" : ` (shrunk ${f.shrinks} times)`}: ${f.input}`,
        `   node: ${f.detail.replace(/\n/g, "\n         ")}`,
        f.path === undefined
          ? `   seen with seed ${f.seed}`
          : `   replay: npm run fuzz -- --replay ${f.part}:${f.seed}:${f.path}`,
      );
    }
    return lines.join("\n");
  }

  /** One line per finding, for a test's assertion message. */
  summary(part?: Finding["part"]): string[] {
    return [...this.findings.values()]
      .filter((f) => part === undefined || f.part === part)
      .map((f) => `${f.signature} (x${f.count}); input: ${f.input.slice(0, 600)}${f.path === undefined ? "" : `; replay: --replay ${f.part}:${f.seed}:${f.path}`}`);
  }
}

export function kindOf(signature: string): "5xx" | "bodiless" | "crash" | "other" {
  if (signature.startsWith("crash")) return "crash";
  if (signature.startsWith("5xx")) return "5xx";
  if (signature.startsWith("bodiless")) return "bodiless";
  return "other";
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const verdict = (ok: boolean, what: string) => `${ok ? "PASS" : "FAIL"} ${what}`;

function align(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd((widths[c] ?? 0) + 3)).join("").trimEnd()).join("\n");
}

/** A fuzz input as one line: long strings cut, byte arrays as hex. */
export function show(value: unknown, max = 1_500): string {
  const text = JSON.stringify(value, (key, v) => {
    if (typeof v === "string" && v.length > 120) return `${v.slice(0, 60)}…[${v.length} chars]`;
    if (key === "bytes" && Array.isArray(v)) return `hex:${Buffer.from(v as number[]).toString("hex")}`;
    return v;
  });
  return text.length > max ? `${text.slice(0, max)}…[${text.length} chars]` : text;
}
