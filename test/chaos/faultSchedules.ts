import type { NodeProcess } from "../support/shoalProcess.js";
import type { NodeKeeper } from "./NodeKeeper.js";
import type { ProxiedMesh } from "./ProxiedMesh.js";

/** What a fault schedule works with. It runs while workflows are being submitted, and no longer. */
export interface FaultContext {
  mesh: ProxiedMesh;
  keeper: NodeKeeper;
  /** Seeded: the same seed gives the same victims. */
  random: () => number;
  /** When the fault phase began and how long it lasts (performance.now() ms). */
  startedAt: number;
  durationMs: number;
  /** The moment the last fault so far was undone (node restarted, resumed, link healed). */
  healed(): void;
  /** One line for the run's event log. */
  note(what: string): void;
  /** A fault begins: counted, and a line in the log. */
  hit(what: string): void;
  /** Workflows not seen ended yet, by the name of their owner (as last read from the API). */
  running(): Map<string, number>;
}

/**
 * Which node a fault hits: any non-seed node that is up, or the one of those that owns the most
 * workflows still running (a fault that surely lands on running work, for the short runs).
 */
export type Aim = "random" | "busiest";

export type FaultSchedule = (ctx: FaultContext) => Promise<void>;

const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - performance.now())));
const pick = <T>(random: () => number, items: T[]): T | undefined => items[Math.floor(random() * items.length)];
const shuffled = <T>(random: () => number, items: T[]): T[] =>
  items
    .map((item) => ({ item, key: random() }))
    .sort((a, b) => a.key - b.key)
    .map((x) => x.item);

/** The fault times: every `everyMs` from `firstAtMs`, while a fault of `lastsMs` still ends within the phase. */
function* ticks(ctx: FaultContext, everyMs: number, lastsMs: number, firstAtMs = everyMs): Generator<number> {
  for (let t = firstAtMs; t + lastsMs <= ctx.durationMs; t += everyMs) yield ctx.startedAt + t;
}

/** A node other than the seed (the first), chosen among those up. */
function victim(ctx: FaultContext, aim: Aim): NodeProcess | undefined {
  const candidates = ctx.keeper.fit().filter((n) => n !== ctx.mesh.nodes[0]);
  if (aim === "random") return pick(ctx.random, candidates);
  const running = ctx.running();
  return candidates.sort((a, b) => (running.get(b.name) ?? 0) - (running.get(a.name) ?? 0))[0];
}

/** (a) Every `everyMs`, a random non-seed node is SIGKILLed and started again `downMs` later on its data dir. */
export function churn(everyMs: number, downMs: number, aim: Aim = "random"): FaultSchedule {
  return async (ctx) => {
    const restarts: Promise<void>[] = [];
    for (const at of ticks(ctx, everyMs, downMs)) {
      await sleepUntil(at);
      const node = victim(ctx, aim);
      if (!node) continue;
      await ctx.keeper.kill(node);
      ctx.hit(`SIGKILL ${node.name}`);
      await sleepUntil(performance.now() + downMs);
      restarts.push(ctx.keeper.restart(node));
      ctx.note(`restart ${node.name}`);
      ctx.healed();
    }
    await Promise.all(restarts);
  };
}

/** (b) Every `everyMs`, a random non-seed node is SIGSTOPped (a hung box) and SIGCONTed `stopMs` later. */
export function hangs(everyMs: number, stopMs: number, aim: Aim = "random"): FaultSchedule {
  return async (ctx) => {
    for (const at of ticks(ctx, everyMs, stopMs)) {
      await sleepUntil(at);
      const node = victim(ctx, aim);
      if (!node) continue;
      ctx.keeper.hang(node);
      ctx.hit(`SIGSTOP ${node.name}`);
      await sleepUntil(performance.now() + stopMs);
      ctx.keeper.resume(node);
      ctx.note(`SIGCONT ${node.name}`);
      ctx.healed();
    }
  };
}

/**
 * (c) One link slow both ways (`slowMs` each way) for the whole phase, and every `everyMs` the
 * mesh split in two (the smaller side `minority` nodes, at random, or with `busiest` the node
 * that owns the most running workflows among them) for `forMs`, through the proxy.
 */
export function partitions(everyMs: number, forMs: number, minority: number, slowMs: number, aim: Aim = "random"): FaultSchedule {
  return async (ctx) => {
    const { proxy, nodes } = ctx.mesh;
    const [a, b] = shuffled(ctx.random, nodes).map((n) => n.name) as [string, string];
    const slow = () => {
      proxy.set(a, b, { delayMs: slowMs });
      proxy.set(b, a, { delayMs: slowMs });
    };
    slow();
    ctx.hit(`slow link ${a} <-> ${b} (${slowMs} ms each way)`);
    for (const at of ticks(ctx, everyMs, forMs, everyMs / 3)) {
      await sleepUntil(at);
      const running = ctx.running();
      const order = shuffled(ctx.random, nodes).map((n) => n.name);
      if (aim === "busiest") order.sort((x, y) => (running.get(y) ?? 0) - (running.get(x) ?? 0));
      const sides = [order.slice(0, minority), order.slice(minority)];
      proxy.partition(sides);
      ctx.hit(`partition ${sides.map((s) => s.join(",")).join(" | ")}`);
      await sleepUntil(performance.now() + forMs);
      proxy.heal();
      slow();
      ctx.note("partition healed");
      ctx.healed();
    }
    await sleepUntil(ctx.startedAt + ctx.durationMs);
    proxy.heal();
    ctx.note("slow link healed");
    ctx.healed();
  };
}

/** (d) Half way through, every node SIGKILLed at once; all started again `downMs` later. */
export function powerCut(downMs: number): FaultSchedule {
  return async (ctx) => {
    await sleepUntil(ctx.startedAt + ctx.durationMs / 2);
    const all = ctx.mesh.nodes;
    await Promise.all(all.map((n) => ctx.keeper.kill(n)));
    ctx.hit("SIGKILL every node");
    await sleepUntil(performance.now() + downMs);
    const restarts = all.map((n) => ctx.keeper.restart(n));
    ctx.note("restart every node");
    ctx.healed();
    await Promise.all(restarts);
  };
}
