import { readFileSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import type { NodeRow } from "@shoal/protocol";
import { type NodeProcess, startMesh, stopAll, until } from "../support/shoalProcess.js";

/** Detector flags of the other multi-process tests: a node that stops answering is down in 600 ms. */
export const FAST = ["--heartbeat-ms", "100", "--suspect-after-ms", "300", "--down-after-ms", "600"];
export const NAMES = ["fuzz-a", "fuzz-b", "fuzz-c"] as const;
/** How long a check waits for the mesh to be whole again: refutations and redials take a few rounds. */
const HEAL_MS = 8_000;

/** One unplanned exit of a node: what it printed last, and the line that names the error. */
export interface Crash {
  slot: number;
  node: string;
  code: number | null;
  signature: string;
  stderrTail: string;
  at: number;
}

/** Memory and restarts of one of the 3 places in the mesh, across the processes that held it. */
export interface SlotStats {
  name: string;
  crashes: number;
  restarts: number;
  /** VmRSS in MB of the first process, when the mesh was first whole. */
  firstRssMb: number;
  /** VmRSS of the process now in the slot when it became part of a whole mesh. */
  startRssMb: number;
  lastRssMb: number;
  peakRssMb: number;
  /**
   * VmRSS of the process now in the slot, at most one sample per SAMPLE_EVERY_MS (after every
   * input the mesh is checked, and sampled). A single sample swings by 40 MB and more with the
   * input being handled right then (a 16 MiB frame in decoding), so growth compares the median of
   * a window after the warm-up with that of the run's last window (`rssGrowth`).
   */
  samples: { at: number; mb: number }[];
  /** When growth starts to count: the end of the warm-up, or the start of a process that started after it. */
  settledAt: number;
  /**
   * VmRSS after the mesh sat idle for a while (`rest`), before the first input and after the
   * last (long run only): V8 gives back its young generation after some seconds without work,
   * so this is what the node keeps, not what it has in hand.
   */
  restBeforeMb: number;
  restAfterMb: number;
  /** V8's committed heap and the memory held outside it (buffers), after the warm-up and at the end: what the RSS growth is made of. */
  settledHeap: HeapMb;
  lastHeap: HeapMb;
}

/**
 * Length of the windows whose median RSS growth compares: the one after the warm-up and the
 * run's last; in a run shorter than 3 of them, a third of it each, so that they never overlap.
 */
export const RSS_WINDOW_MS = 20_000;
const SAMPLE_EVERY_MS = 500;

/** Median RSS of the window after the warm-up ("warm"), of the last window ("end"), and the growth between them. */
export function rssGrowth(stats: SlotStats): { warm: number; end: number; growth: number } {
  const median = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return sorted.length === 0 ? Number.NaN : (sorted[Math.floor((sorted.length - 1) / 2)]! + sorted[Math.ceil((sorted.length - 1) / 2)]!) / 2;
  };
  const settled = stats.samples.filter((x) => x.at >= stats.settledAt);
  const first = settled[0]?.at ?? Number.NaN;
  const last = settled.at(-1)?.at ?? Number.NaN;
  const window = Math.min(RSS_WINDOW_MS, (last - first) / 3);
  const warm = median(settled.filter((x) => x.at <= first + window).map((x) => x.mb));
  const end = median(settled.filter((x) => x.at >= last - window).map((x) => x.mb));
  return { warm, end, growth: end - warm };
}

/** From the node's own `/metrics` (prom-client's default process metrics). */
export interface HeapMb {
  heapTotal: number;
  heapUsed: number;
  external: number;
}

const NO_HEAP: HeapMb = { heapTotal: Number.NaN, heapUsed: Number.NaN, external: Number.NaN };

export interface Health {
  ok: boolean;
  /** What is wrong, in a few words that do not depend on ports or ids (so findings group). */
  problem?: string;
  detail?: string;
}

export function rssMb(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
    return kb / 1024;
  } catch {
    return Number.NaN;
  }
}

/** The line of a dead node's stderr that names what killed it, with numbers blanked so that crashes group. */
export function crashSignature(stderr: string, code: number | null): string {
  const lines = stderr.split("\n").map((l) => l.trim());
  const line =
    lines.find((l) => /^(FATAL ERROR|\w*Error\b|Error:|shoal: )/.test(l)) ??
    lines.find((l) => /error/i.test(l) && !/throw er;/.test(l)) ??
    `exit ${code}`;
  return line.replace(/\d+/g, "N").slice(0, 160);
}

/**
 * Three real `shoal node` processes joined into one mesh, each with its own data dir and fast
 * detector flags. Tracks every exit, the RSS of each node, and answers "is everything still
 * fine?": all alive, `/healthz` 200 within a few seconds, every node sees all 3 `up`. When that
 * fails it brings the mesh back (the dead node restarted on its data dir, or a fresh mesh).
 */
export class FuzzMesh {
  nodes: NodeProcess[] = [];
  readonly crashes: Crash[] = [];
  readonly slots: SlotStats[] = NAMES.map((name) => ({ name, crashes: 0, restarts: 0, firstRssMb: Number.NaN, startRssMb: Number.NaN, lastRssMb: Number.NaN, peakRssMb: 0, restBeforeMb: Number.NaN, restAfterMb: Number.NaN, samples: [], settledAt: 0, settledHeap: NO_HEAP, lastHeap: NO_HEAP }));
  /** Node ids by slot, for inputs that name a real member. */
  ids: string[] = [];
  /** Set by a failed check: the next input first gets a whole mesh again. */
  broken = false;
  private readonly dead = new Set<NodeProcess>();
  private readonly stopping = new Set<NodeProcess>();
  private readonly dataDirs = new Set<string>();

  constructor(private readonly extra: string[] = []) {}

  async start(): Promise<void> {
    const mesh = await startMesh([...NAMES], { extra: [...FAST, "--log-level", "warn", ...this.extra] });
    this.nodes = mesh.nodes;
    for (const [slot, node] of this.nodes.entries()) this.watch(slot, node);
    const health = await this.look();
    if (!health.ok) throw new Error(`the fuzz mesh never became whole: ${health.problem} ${health.detail ?? ""} ${this.lastCrash()}`);
    await this.learnIds();
    for (const slot of this.slots.keys()) this.resetRss(slot, true);
  }

  get addresses(): string[] {
    return this.nodes.map((n) => n.address);
  }

  /** True when some node exited since the mesh was last made whole. */
  anyDead(): boolean {
    return this.nodes.some((n) => this.dead.has(n));
  }

  /** Crashes recorded since `index` (crashes.length before the input ran). */
  crashesSince(index: number): Crash[] {
    return this.crashes.slice(index);
  }

  /** All alive, /healthz 200 within 3 s, all 3 up on every node (waiting up to 8 s for it to heal). */
  async check(): Promise<Health> {
    const health = await this.look();
    if (!health.ok) this.broken = true;
    return health;
  }

  /** Heals the mesh if the last check failed or a node died since. */
  async ensureWhole(): Promise<void> {
    if (this.broken || this.anyDead()) await this.heal();
  }

  /** Does the node in `slot` answer /healthz within a second? */
  async answers(slot: number): Promise<boolean> {
    const node = this.nodes[slot];
    if (!node || this.dead.has(node)) return false;
    return fetch(`http://${node.address}/healthz`, { signal: AbortSignal.timeout(1_000) }).then((r) => r.status === 200, () => false);
  }

  /** Waits up to `ms` for a node to exit (a crash shows as a refused request a moment before the exit). */
  async settle(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!this.anyDead() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  }

  private async look(): Promise<Health> {
    if (this.anyDead()) {
      const dead = this.nodes.filter((n) => this.dead.has(n)).map((n) => n.name);
      return { ok: false, problem: "node exited", detail: dead.join(", ") };
    }
    for (const node of this.nodes) {
      const status = await fetch(`http://${node.address}/healthz`, { signal: AbortSignal.timeout(3_000) }).then(
        (r) => r.status,
        (err: Error) => err.message,
      );
      if (status !== 200) return { ok: false, problem: "healthz not 200 within 3 s", detail: `${node.name}: ${status}` };
    }
    let last = "";
    try {
      await until(
        async () => {
          if (this.anyDead()) return true;
          const views = await Promise.all(this.nodes.map((n) => this.view(n)));
          const missing = views.flatMap((rows, i) =>
            this.nodes.filter((peer) => rows.find((r) => r.name === peer.name)?.status !== "up").map((peer) => `${this.nodes[i]?.name} sees ${peer.name} ${rows.find((r) => r.name === peer.name)?.status ?? "missing"}`),
          );
          last = missing.join("; ");
          return missing.length === 0;
        },
        HEAL_MS,
      );
    } catch {
      return { ok: false, problem: `mesh not whole after ${HEAL_MS} ms`, detail: last };
    }
    if (this.anyDead()) return this.look();
    for (const slot of this.slots.keys()) this.sampleRss(slot);
    return { ok: true };
  }

  /** Makes the mesh whole again after a failed check: restarts dead nodes, else starts a fresh mesh. */
  async heal(): Promise<void> {
    const deadSlots = this.nodes.flatMap((n, slot) => (this.dead.has(n) ? [slot] : []));
    if (deadSlots.length > 0 && deadSlots.length < this.nodes.length) {
      for (const slot of deadSlots) {
        const node = this.nodes[slot]!;
        this.dead.delete(node);
        node.stderr = "";
        node.restart();
        this.watch(slot, node);
        this.slots[slot]!.restarts++;
      }
      const ok = await Promise.all(deadSlots.map((s) => this.nodes[s]!.ready(10_000).then(() => true, () => false)));
      if (ok.every(Boolean) && (await this.look()).ok) {
        this.broken = false;
        await this.learnIds();
        for (const slot of deadSlots) this.resetRss(slot, false);
        return;
      }
    }
    await this.stop();
    for (const slot of this.slots) slot.restarts++;
    const mesh = await startMesh([...NAMES], { extra: [...FAST, "--log-level", "warn", ...this.extra] });
    this.nodes = mesh.nodes;
    for (const [slot, node] of this.nodes.entries()) this.watch(slot, node);
    const health = await this.look();
    if (!health.ok) throw new Error(`a fresh fuzz mesh did not become whole: ${health.problem} ${health.detail ?? ""} ${this.lastCrash()}`);
    this.broken = false;
    await this.learnIds();
    for (const slot of this.slots.keys()) this.resetRss(slot, false);
  }

  /**
   * Ends the warm-up: from now on RSS growth counts from here. The first inputs take RSS up to
   * what the largest of them need (V8's heap spaces, malloc's arenas), and neither gives that
   * back to the system; a leak goes on growing after it (README, "RSS growth").
   */
  async markSettled(): Promise<void> {
    for (const [slot, stats] of this.slots.entries()) {
      stats.settledAt = Date.now();
      this.sampleRss(slot, true);
      stats.settledHeap = await this.heapOf(slot);
    }
  }

  /** Lets the nodes sit idle for `ms`, then takes each one's RSS as its rest figure `before` or `after` the inputs. */
  async rest(when: "before" | "after", ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    for (const [slot, stats] of this.slots.entries()) {
      const mb = rssMb(this.nodes[slot]?.pid);
      if (when === "before") stats.restBeforeMb = mb;
      // A process that restarted since has no rest figure from before to compare with.
      else stats.restAfterMb = stats.restarts === 0 ? mb : Number.NaN;
    }
  }

  /** RSS and heap of each node in a few words, for the long run's progress lines. */
  async memoryLine(): Promise<string> {
    const parts = await Promise.all(
      this.slots.map(async (s, slot) => {
        const heap = await this.heapOf(slot);
        return `${s.name} rss ${rssMb(this.nodes[slot]?.pid).toFixed(0)} heap ${heap.heapUsed.toFixed(0)}/${heap.heapTotal.toFixed(0)} ext ${heap.external.toFixed(0)}`;
      }),
    );
    return parts.join(", ");
  }

  /** Drops the log lines the nodes printed so far (a long run would keep them all otherwise). */
  forgetLogs(): void {
    for (const node of this.nodes) node.logs.length = 0;
  }

  async stop(): Promise<void> {
    for (const slot of this.slots.keys()) this.slots[slot]!.lastHeap = await this.heapOf(slot);
    for (const node of this.nodes) this.stopping.add(node);
    for (const slot of this.slots.keys()) this.sampleRss(slot, true);
    await stopAll(this.nodes);
  }

  /** Kills the nodes and removes every data dir this mesh made. */
  async close(): Promise<void> {
    await this.stop();
    for (const dir of this.dataDirs) rmSync(dir, { recursive: true, force: true });
  }

  private lastCrash(): string {
    const crash = this.crashes.at(-1);
    return crash ? `(last exit: ${crash.node}, code ${crash.code}: ${crash.stderrTail.slice(-800)})` : "";
  }

  private watch(slot: number, node: NodeProcess): void {
    this.dataDirs.add(dirname(node.dataDir));
    const pid = node.pid;
    void node.exit().then((code) => {
      // `exit()` resolves with the latest child's exit: ignore a restart's predecessor.
      if (node.pid !== pid || this.stopping.has(node)) return;
      this.dead.add(node);
      this.slots[slot]!.crashes++;
      this.crashes.push({ slot, node: node.name, code, signature: crashSignature(node.stderr, code), stderrTail: node.stderr.slice(-3_000), at: Date.now() });
    });
  }

  private async view(node: NodeProcess): Promise<NodeRow[]> {
    const res = await fetch(`http://${node.address}/v1/nodes`, { signal: AbortSignal.timeout(3_000) });
    return ((await res.json()) as { nodes: NodeRow[] }).nodes;
  }

  private async learnIds(): Promise<void> {
    this.ids = await Promise.all(this.nodes.map(async (n) => (await this.view(n)).find((r) => r.self)?.id ?? n.name));
  }

  private async heapOf(slot: number): Promise<HeapMb> {
    const node = this.nodes[slot];
    if (!node || this.dead.has(node)) return NO_HEAP;
    try {
      const text = (await node.get("/metrics")).text;
      const mb = (name: string) => Number(new RegExp(`^shoal_nodejs_${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN) / 2 ** 20;
      return { heapTotal: mb("heap_size_total_bytes"), heapUsed: mb("heap_size_used_bytes"), external: mb("external_memory_bytes") };
    } catch {
      return NO_HEAP;
    }
  }

  private sampleRss(slot: number, always = false): void {
    const stats = this.slots[slot]!;
    const mb = rssMb(this.nodes[slot]?.pid);
    if (!Number.isFinite(mb)) return;
    stats.lastRssMb = mb;
    stats.peakRssMb = Math.max(stats.peakRssMb, mb);
    const now = Date.now();
    if (always || now - (stats.samples.at(-1)?.at ?? 0) >= SAMPLE_EVERY_MS) stats.samples.push({ at: now, mb });
  }

  private resetRss(slot: number, first: boolean): void {
    const stats = this.slots[slot]!;
    const mb = rssMb(this.nodes[slot]?.pid);
    if (first) stats.firstRssMb = mb;
    stats.startRssMb = mb;
    stats.lastRssMb = mb;
    stats.peakRssMb = Math.max(stats.peakRssMb, mb);
    stats.samples = Number.isFinite(mb) ? [{ at: Date.now(), mb }] : [];
    // A process that starts after the warm-up counts from its own start (its first window is then its warm-up too).
    if (!first) stats.settledAt = Date.now();
    stats.settledHeap = NO_HEAP;
  }
}
