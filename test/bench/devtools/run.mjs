#!/usr/bin/env node
// Devtools benchmark: how fast the built inspector (apps/devtools/dist) loads with 50 nodes and
// 1,000 workflows, and how many inspection events per second it keeps up with. See README.md.
//
//   node test/bench/devtools/run.mjs [--rates 1000,5000,20000,50000] [--stage-ms 5000]
//                                    [--views list,workflow,mesh] [--loads 3] [--profile DIR] [--trace DIR]
//
// A fake node (fake-node.mjs) in this process serves the page and its API on loopback and streams
// synthetic events; headless chromium runs the page. Exits 0 whatever the numbers are (the output
// is a report); exits 1 when something broke: no build, the page never showed its rows, a page
// error, chromium did not start.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { median, percentile } from "../lib/stats.mjs";
import { table } from "../lib/table.mjs";
import { buildMesh, MIX, startFakeNode } from "./fake-node.mjs";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const DEVTOOLS = join(ROOT, "apps/devtools");
const DIST = join(DEVTOOLS, "dist");
const require = createRequire(join(ROOT, "test/package.json"));
const { chromium } = require("playwright-core");
const { WebSocketServer } = require("ws");

const MESH = { nodes: 50, workflows: 1000, actors: 3000 };
const USABLE = { loadMs: 2_000, rate: 5_000 };
/**
 * What "kept up" means for one stage. Frame gaps come in whole 60 Hz frames (16.7 ms), so the
 * limit is six frames, 100.0 ms, with a little room for timestamp jitter.
 */
const KEEP_UP = { appliedRatio: 0.95, frameGapP95Ms: 100, jitterMs: 1 };
/** The page may be one flush (the node batches every 100 ms) behind and still keep up. */
const GRACE_MS = 100;
const DRAIN_TIMEOUT_MS = 15_000;
const READY_TIMEOUT_MS = 20_000;

const VIEWS = {
  list: { label: "workflows list", hash: () => "#/workflows", ready: () => document.querySelectorAll(".wf-row").length > 0 },
  workflow: { label: "workflow view", hash: (m) => `#/workflows/${m.watched}`, ready: () => document.querySelectorAll("svg.dag g.step").length > 0 },
  mesh: { label: "mesh view", hash: () => "#/mesh", ready: () => document.querySelectorAll(".node-card").length >= 50 },
};

function parseArgs(argv) {
  const opts = { rates: [1_000, 5_000, 20_000, 50_000], stageMs: 5_000, views: ["list", "workflow", "mesh"], loads: 3, profile: undefined, trace: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === "--rates") opts.rates = value().split(",").map(Number);
    else if (arg === "--stage-ms") opts.stageMs = Number(value());
    else if (arg === "--views") opts.views = value().split(",");
    else if (arg === "--loads") opts.loads = Number(value());
    else if (arg === "--profile") opts.profile = resolve(value());
    else if (arg === "--trace") opts.trace = resolve(value());
    else throw new Error(`unknown option ${arg}`);
  }
  if (opts.rates.some((r) => !(r > 0))) throw new Error("--rates: positive numbers, comma separated");
  if (!(opts.stageMs >= 1_000)) throw new Error("--stage-ms must be at least 1000");
  for (const v of opts.views) if (!VIEWS[v]) throw new Error(`--views: unknown view ${v} (list, workflow, mesh)`);
  return opts;
}

const log = (line) => console.error(`[bench] ${line}`);

// ---------------------------------------------------------------------------------------------
// The build under test.

/** The built page, or an error that says how to build it. Warns when src is newer than dist. */
function checkBuild() {
  const index = join(DIST, "index.html");
  if (!existsSync(index)) throw new Error(`no devtools build at ${DIST}: run \`cd apps/devtools && npx vite build\` first`);
  const assets = join(DIST, "assets");
  const js = existsSync(assets) ? readdirSync(assets).filter((f) => f.endsWith(".js")) : [];
  if (!js.some((f) => readFileSync(join(assets, f), "utf8").includes("__shoal"))) {
    throw new Error("the devtools build does not expose window.__shoal (the store): rebuild it from the current src");
  }
  const built = statSync(index).mtimeMs;
  const newer = [];
  const walk = (dir) => {
    for (const f of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, f.name);
      if (f.isDirectory()) walk(p);
      else if (statSync(p).mtimeMs > built) newer.push(p.slice(DEVTOOLS.length + 1));
    }
  };
  walk(join(DEVTOOLS, "src"));
  if (statSync(join(DEVTOOLS, "index.html")).mtimeMs > built) newer.push("index.html");
  return { stale: newer };
}

// ---------------------------------------------------------------------------------------------
// In the page. The init script runs before the page's own code; it only watches.

/* global window, document, performance, requestAnimationFrame, PerformanceObserver */
function instrument() {
  const b = {
    firstRow: null,
    cards50: null,
    frames: [], // rAF timestamps
    longTasks: [], // [start, duration]
    parse: [0, 0], // [ms, calls] in JSON.parse
    applied: [], // [wall ms, eventsSeen after, ms in store.apply]
    renders: [0, 0], // [ms, calls] in the store's change listeners (the views' render)
    late: [], // [when a 100 ms timer was due, ms from then until the next frame ran]
  };
  window.__bench = b;
  const check = () => {
    if (b.firstRow === null && document.querySelector(".wf-row")) b.firstRow = performance.now();
    if (b.cards50 === null && document.querySelectorAll(".node-card").length >= 50) b.cards50 = performance.now();
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true });
  const frame = (t) => {
    b.frames.push(t);
    if (b.frames.length > 50_000) b.frames.splice(0, 25_000);
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  // What a click would wait for, roughly: a task on the main thread, then the next frame.
  let due = performance.now() + 100;
  const timer = () => {
    const intended = due;
    requestAnimationFrame(() => {
      b.late.push([intended, performance.now() - intended]);
      if (b.late.length > 20_000) b.late.splice(0, 10_000);
    });
    due = performance.now() + 100;
    setTimeout(timer, 100);
  };
  setTimeout(timer, 100);
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) b.longTasks.push([e.startTime, e.duration]);
    }).observe({ type: "longtask", buffered: true });
  } catch {}
  const parse = JSON.parse;
  JSON.parse = function timedParse(text, reviver) {
    const t0 = performance.now();
    try {
      return parse.call(this, text, reviver);
    } finally {
      b.parse[0] += performance.now() - t0;
      b.parse[1]++;
    }
  };
  /** Wraps the store once the page has made it: times apply() and every render. */
  b.hook = () => {
    const store = window.__shoal;
    if (!store || b.hooked) return !!b.hooked;
    const apply = store.apply;
    store.apply = function timedApply(events) {
      const t0 = performance.now();
      const out = apply.call(this, events);
      const t1 = performance.now();
      b.applied.push([performance.timeOrigin + t1, this.eventsSeen, t1 - t0]);
      return out;
    };
    // `listeners` is a TypeScript-private field: at run time a plain Set of the render callbacks.
    if (store.listeners instanceof Set) {
      const fns = [...store.listeners];
      store.listeners.clear();
      for (const fn of fns) {
        store.listeners.add(function timedRender() {
          const t0 = performance.now();
          try {
            return fn();
          } finally {
            b.renders[0] += performance.now() - t0;
            b.renders[1]++;
          }
        });
      }
    }
    b.hooked = true;
    return true;
  };
  b.mark = () => ({ seen: window.__shoal?.eventsSeen ?? 0, now: performance.now(), wall: performance.timeOrigin + performance.now(), applied: b.applied.length, parse: [...b.parse], renders: [...b.renders] });
  b.collect = (mark) => {
    const now = performance.now();
    const frames = b.frames.filter((t) => t >= mark.now);
    const gaps = [];
    for (let i = 1; i < frames.length; i++) gaps.push(frames[i] - frames[i - 1]);
    // The gap from the last frame to now counts too: a page stuck in one long task has no frames.
    if (frames.length) gaps.push(now - frames[frames.length - 1]);
    else gaps.push(now - mark.now);
    const longTaskMs = b.longTasks.filter(([s]) => s >= mark.now).reduce((sum, [, d]) => sum + d, 0);
    return {
      now,
      wall: performance.timeOrigin + now,
      ms: now - mark.now,
      gaps,
      longTaskMs,
      applied: b.applied.slice(mark.applied),
      late: b.late.filter(([t]) => t >= mark.now).map(([, ms]) => ms),
      parseMs: b.parse[0] - mark.parse[0],
      renderMs: b.renders[0] - mark.renders[0],
      renderCalls: b.renders[1] - mark.renders[1],
      eventsSeen: window.__shoal?.eventsSeen ?? 0,
      heapMb: performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null,
    };
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers.

const fmt = (value, digits = 0) => (typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "-");
const fmtRate = (r) => (Number.isFinite(r) ? Math.round(r).toLocaleString("en-US") : "-");

// ---------------------------------------------------------------------------------------------
// The runs.

class Bench {
  constructor(browser, node, mesh, opts) {
    this.browser = browser;
    this.node = node;
    this.mesh = mesh;
    this.opts = opts;
    this.pageErrors = [];
  }

  async newPage() {
    // A fresh context every time: cold cache, fresh sessionStorage, a store of its own.
    const context = await this.browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addInitScript(instrument);
    const page = await context.newPage();
    page.on("pageerror", (err) => this.pageErrors.push(String(err?.message ?? err)));
    page.on("console", (msg) => {
      if (msg.type() === "error" && !/Failed to load resource/.test(msg.text())) this.pageErrors.push(`console: ${msg.text()}`);
    });
    return { context, page };
  }

  /** One cold load of `hash`: ms from navigation start until `what` (firstRow or cards50). */
  async loadOnce(hash, what) {
    const { context, page } = await this.newPage();
    try {
      await page.goto(`${this.node.url}/devtools${hash}`, { waitUntil: "commit" });
      await page.waitForFunction((key) => window.__bench[key] !== null, what, { timeout: READY_TIMEOUT_MS });
      return await page.evaluate((key) => {
        const nav = performance.getEntriesByType("navigation")[0];
        return {
          ms: window.__bench[key],
          domContentLoaded: nav?.domContentLoadedEventEnd ?? null,
          rows: document.querySelectorAll(".wf-row").length,
          count: document.querySelector("#wf-count")?.textContent ?? null,
          cards: document.querySelectorAll(".node-card").length,
          workflows: window.__shoal?.workflows.size ?? 0,
        };
      }, what);
    } catch (err) {
      throw new Error(`devtools${hash} did not show ${what === "firstRow" ? ".wf-row elements" : "50 .node-card elements"}: ${err.message.split("\n")[0]}`);
    } finally {
      await context.close();
    }
  }

  async measureLoads() {
    const list = [];
    const mesh = [];
    for (let i = 0; i < this.opts.loads; i++) {
      const l = await this.loadOnce("#/workflows", "firstRow");
      if (!/of 1000$/.test(l.count ?? "") || l.workflows !== MESH.workflows) throw new Error(`the workflow list shows "${l.count}", store has ${l.workflows} workflows: expected 1000`);
      list.push(l);
      const m = await this.loadOnce("#/mesh", "cards50");
      mesh.push(m);
      log(`load ${i + 1}: first .wf-row ${fmt(l.ms)} ms (DOMContentLoaded ${fmt(l.domContentLoaded)} ms, ${l.rows} rows in the DOM), 50 .node-card ${fmt(m.ms)} ms`);
    }
    return { list, mesh };
  }

  /** Opens `view`, then streams each rate in turn while it is open. */
  async measureView(view) {
    const spec = VIEWS[view];
    const { context, page } = await this.newPage();
    const stages = [];
    let connected;
    this.node.stream.onConnect = (entry) => (connected = entry);
    try {
      await page.goto(`${this.node.url}/devtools${spec.hash(this.mesh)}`, { waitUntil: "commit" });
      await page.waitForFunction(spec.ready, null, { timeout: READY_TIMEOUT_MS });
      await page.waitForFunction(() => document.querySelector("#conn")?.classList.contains("open") && window.__bench.hook(), null, { timeout: READY_TIMEOUT_MS });
      if (!connected) throw new Error("the page opened no /v1/inspect socket");
      const entry = connected;
      let cdp;
      for (const rate of this.opts.rates) {
        const profiling = this.opts.profile && rate === this.opts.rates[this.opts.rates.length - 1];
        if (profiling) {
          cdp = await context.newCDPSession(page);
          await cdp.send("Profiler.enable");
          await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
        }
        const tracing = this.opts.trace && rate === this.opts.rates[this.opts.rates.length - 1];
        const stage = await this.stage(page, entry, rate, profiling ? cdp : undefined, view, tracing);
        stages.push(stage);
        log(
          `${spec.label} @ ${fmtRate(rate)}/s: applied ${fmtRate(stage.applied)}/s of ${fmtRate(stage.offered)}/s (${fmt(stage.ratio * 100, 1)}%), ` +
            `frame gap p50/p95/max ${fmt(stage.gapP50, 1)}/${fmt(stage.gapP95, 1)}/${fmt(stage.gapMax, 1)} ms, timer->frame p95 ${fmt(stage.lateP95)} ms, delay p95 ${fmt(stage.delayP95)} ms, ` +
            `main thread per s: parse ${fmt(stage.parsePerS)} + apply ${fmt(stage.applyPerS)} + render ${fmt(stage.renderPerS)} ms (${fmt(stage.rendersPerS)} renders/s), ` +
            `long tasks ${fmt(stage.longTaskPerS)} ms/s, backlog max ${fmt(stage.maxBufferedMb, 1)} MB, drained in ${stage.drainMs === null ? "never" : `${fmt(stage.drainMs)} ms`}` +
            (stage.heapMb ? `, heap ${fmt(stage.heapMb)} MB` : ""),
        );
        if (stage.drainMs === null) {
          log(`${spec.label}: the page did not catch up within ${DRAIN_TIMEOUT_MS / 1000} s; higher rates are skipped`);
          break;
        }
      }
      await cdp?.detach().catch(() => {});
    } finally {
      this.node.stream.setRate(0);
      this.node.stream.onConnect = undefined;
      await context.close();
    }
    // The highest rate kept up with, when every lower rate was kept up with too.
    let best = 0;
    for (const s of stages) {
      if (!s.keptUp) break;
      best = s.rate;
    }
    return { view, stages, best };
  }

  async stage(page, entry, rate, cdp, view, tracing) {
    const node = this.node;
    entry.maxBuffered = 0;
    let traceFile;
    if (tracing) {
      mkdirSync(this.opts.trace, { recursive: true });
      traceFile = join(this.opts.trace, `devtools-${view}-${rate}.trace.json`);
      await this.browser.startTracing(page, { path: traceFile });
    }
    if (cdp) await cdp.send("Profiler.start");
    // The stream is off and the last stage drained: the page has taken in all it was sent.
    const mark = await page.evaluate(() => window.__bench.mark());
    const sent0 = mark.seen;
    const started = Date.now();
    node.stream.setRate(rate);
    await sleep(this.opts.stageMs);
    const end = await page.evaluate((m) => window.__bench.collect(m), mark);
    node.stream.setRate(0);
    let profile;
    if (cdp) profile = (await cdp.send("Profiler.stop")).profile;
    if (tracing) await this.browser.stopTracing();
    const maxBuffered = entry.maxBuffered;

    // What the page had applied by the end of the stage, against what the node had sent up to one
    // flush before it (the last batch may still be on its way however fast the page is).
    const seconds = (end.wall - started) / 1000;
    const sentTotal = node.sentBy(entry, end.wall) - sent0;
    const owed = node.sentBy(entry, end.wall - GRACE_MS) - sent0;
    const appliedTotal = end.eventsSeen - sent0;
    const behind = Math.max(0, owed - appliedTotal);
    // Delay of each applied batch: when the page applied it minus when the node made it.
    const sentAt = new Map(entry.series.map(([t, n]) => [n, t]));
    const delays = end.applied.map(([t, n]) => (sentAt.has(n) ? t - sentAt.get(n) : NaN)).filter(Number.isFinite);
    const applyMs = end.applied.reduce((sum, [, , ms]) => sum + ms, 0);
    const perS = (ms) => (ms / end.ms) * 1000;

    // Drain: the stream is off; wait until the page has taken in everything it was sent.
    const t0 = performance.now();
    let drainMs = null;
    while (performance.now() - t0 < DRAIN_TIMEOUT_MS) {
      const seen = await page.evaluate(() => window.__shoal.eventsSeen);
      if (seen >= entry.sent) {
        drainMs = performance.now() - t0;
        break;
      }
      await sleep(100);
    }
    // Leftover frames of the last render, then a quiet moment before the next rate.
    await sleep(300);

    const stage = {
      view,
      rate,
      offered: sentTotal / seconds,
      applied: appliedTotal / seconds,
      ratio: owed > 0 ? 1 - behind / owed : NaN,
      behind,
      gapP50: percentile(end.gaps, 0.5),
      gapP95: percentile(end.gaps, 0.95),
      gapMax: Math.max(...end.gaps),
      lateP95: percentile(end.late, 0.95),
      delayP95: percentile(delays, 0.95),
      parsePerS: perS(end.parseMs),
      applyPerS: perS(applyMs),
      renderPerS: perS(end.renderMs),
      rendersPerS: perS(end.renderCalls),
      longTaskPerS: perS(end.longTaskMs),
      maxBufferedMb: maxBuffered / 1048576,
      drainMs,
      heapMb: end.heapMb,
    };
    stage.keptUp = stage.ratio >= KEEP_UP.appliedRatio && stage.gapP95 <= KEEP_UP.frameGapP95Ms + KEEP_UP.jitterMs;
    if (profile) stage.profile = this.saveProfile(profile, view, rate);
    if (traceFile) stage.trace = summariseTrace(traceFile, view, rate);
    return stage;
  }

  /** Writes a .cpuprofile and returns the top functions by self time. */
  saveProfile(profile, view, rate) {
    mkdirSync(this.opts.profile, { recursive: true });
    const file = join(this.opts.profile, `devtools-${view}-${rate}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map();
    profile.samples.forEach((id, i) => {
      const n = byId.get(id);
      const f = n.callFrame;
      const file = f.url ? f.url.replace(/^.*\//, "") : "";
      const key = `${f.functionName || "(anonymous)"} ${file}${file ? `:${f.lineNumber + 1}:${f.columnNumber + 1}` : ""}`;
      self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
    });
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, ms]) => ({ fn: k, ms, share: ms / total }));
    log(`profile of ${VIEWS[view].label} @ ${fmtRate(rate)}/s written to ${file}; top self time:`);
    for (const t of top) log(`   ${fmt(t.share * 100, 1).padStart(5)}%  ${fmt(t.ms).padStart(6)} ms  ${t.fn}`);
    return { file, top };
  }
}

/**
 * The renderer main thread's time in a Chrome trace, by event name, as self time (an event's
 * duration less that of the events nested in it): script, JSON parsing, style, layout, paint, GC.
 */
function summariseTrace(file, view, rate) {
  const { traceEvents } = JSON.parse(readFileSync(file, "utf8"));
  const mains = new Set(traceEvents.filter((e) => e.ph === "M" && e.name === "thread_name" && e.args?.name === "CrRendererMain").map((e) => `${e.pid}:${e.tid}`));
  // Of the renderer main threads, the busy one is the page's.
  const counts = new Map();
  for (const e of traceEvents) if (e.ph === "X" && mains.has(`${e.pid}:${e.tid}`)) counts.set(`${e.pid}:${e.tid}`, (counts.get(`${e.pid}:${e.tid}`) ?? 0) + 1);
  const main = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const events = traceEvents.filter((e) => e.ph === "X" && `${e.pid}:${e.tid}` === main && e.dur !== undefined).sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const self = new Map();
  const stack = [];
  let first = Infinity;
  let last = 0;
  for (const e of events) {
    first = Math.min(first, e.ts);
    last = Math.max(last, e.ts + e.dur);
    while (stack.length && stack.at(-1).end <= e.ts) stack.pop();
    const parent = stack.at(-1);
    if (parent) self.set(parent.name, (self.get(parent.name) ?? 0) - Math.min(e.dur, parent.end - e.ts));
    self.set(e.name, (self.get(e.name) ?? 0) + e.dur);
    stack.push({ name: e.name, end: e.ts + e.dur });
  }
  const spanMs = (last - first) / 1000;
  const top = [...self.entries()].map(([name, us]) => ({ name, ms: us / 1000 })).filter((t) => t.ms > 0).sort((a, b) => b.ms - a.ms).slice(0, 12);
  log(`trace of ${VIEWS[view].label} @ ${fmtRate(rate)}/s written to ${file}; renderer main thread, self time over ${fmt(spanMs / 1000, 1)} s:`);
  for (const t of top) log(`   ${fmt((t.ms / spanMs) * 100, 1).padStart(5)}%  ${fmt(t.ms).padStart(6)} ms  ${t.name}`);
  return { file, top, spanMs };
}

// ---------------------------------------------------------------------------------------------
// Report.

function report({ loads, views, opts, build, node }) {
  const listMs = median(loads.list.map((l) => l.ms));
  const meshMs = median(loads.mesh.map((l) => l.ms));
  const each = (ls) => ls.map((l) => fmt(l.ms)).join(", ");
  const rows = [
    ["metric", "value", "target / notes"],
    ["load /devtools#/workflows -> first .wf-row", `${fmt(listMs)} ms`, `usable < ${USABLE.loadMs} ms; median of ${loads.list.length} cold loads (${each(loads.list)})`],
    ["load /devtools#/mesh -> 50 .node-card", `${fmt(meshMs)} ms`, `usable < ${USABLE.loadMs} ms; median of ${loads.mesh.length} cold loads (${each(loads.mesh)})`],
  ];
  for (const v of views) {
    const notKept = v.stages.find((s) => !s.keptUp);
    const why = notKept
      ? `at ${fmtRate(notKept.rate)}/s: ${fmt(notKept.ratio * 100, 1)}% applied, frame gap p95 ${fmt(notKept.gapP95, 1)} ms`
      : `kept up with every rate tried (${v.stages.map((s) => fmtRate(s.rate)).join(", ")}/s)`;
    rows.push([`${VIEWS[v.view].label}: highest rate kept up`, v.best ? `${fmtRate(v.best)} ev/s` : "none", `usable >= ${fmtRate(USABLE.rate)} ev/s; ${why}`]);
  }
  console.log(table(rows));

  console.log("");
  const detail = [["view", "offered/s", "applied/s", "applied", "frame gap p50/p95/max ms", "timer->frame p95 ms", "delay p95 ms", "parse+apply+render ms/s", "renders/s", "ws backlog MB", "heap MB", "kept up"]];
  for (const v of views) {
    for (const s of v.stages) {
      detail.push([
        VIEWS[v.view].label,
        fmtRate(s.offered),
        fmtRate(s.applied),
        `${fmt(s.ratio * 100, 1)}%`,
        `${fmt(s.gapP50, 1)}/${fmt(s.gapP95, 1)}/${fmt(s.gapMax, 1)}`,
        fmt(s.lateP95),
        fmt(s.delayP95),
        `${fmt(s.parsePerS)}+${fmt(s.applyPerS)}+${fmt(s.renderPerS)}`,
        fmt(s.rendersPerS),
        fmt(s.maxBufferedMb, 1),
        fmt(s.heapMb),
        s.keptUp ? "yes" : s.drainMs === null ? "no (never caught up)" : "no",
      ]);
    }
  }
  console.log(table(detail));

  const notes = [];
  const loadOk = listMs < USABLE.loadMs && meshMs < USABLE.loadMs;
  const required = views.filter((v) => v.view === "list" || v.view === "workflow");
  const rateOk = required.length > 0 && required.every((v) => v.best >= USABLE.rate);
  const weak = required.filter((v) => v.best < USABLE.rate).map((v) => VIEWS[v.view].label);
  notes.push(
    `usable with ${MESH.nodes} nodes and ${fmtRate(MESH.workflows)} workflows (load < ${USABLE.loadMs / 1000} s, >= ${fmtRate(USABLE.rate)} ev/s in the workflows list and workflow view): ` +
      (loadOk && rateOk ? "yes" : `no${loadOk ? "" : ", loads too slow"}${rateOk ? "" : `, falls behind below ${fmtRate(USABLE.rate)} ev/s in: ${weak.join(", ") || "(views not run)"}`}`),
  );
  const meshView = views.find((v) => v.view === "mesh");
  if (meshView) notes.push(`mesh view (not part of "usable", the issue asks about the workflow views): highest rate kept up ${meshView.best ? `${fmtRate(meshView.best)} ev/s` : "none"}`);
  notes.push(
    `kept up = at the end of a ${fmt(opts.stageMs / 1000, 1)} s stage the page had applied >= ${KEEP_UP.appliedRatio * 100}% of the events sent up to ${GRACE_MS} ms before, ` +
      `and the p95 gap between animation frames was <= ${KEEP_UP.frameGapP95Ms} ms (6 frames at 60 Hz); a rate counts only if every lower rate was kept up with too`,
  );
  notes.push(
    `stream mix: ${Object.entries(MIX).map(([k, v]) => `${k} ${v * 100}%`).join(", ")} over ${MESH.nodes} nodes, ${fmtRate(MESH.workflows)} workflows, ${fmtRate(MESH.actors)} actors, in batches every 100 ms (not capped at the node's 2,000 per batch)`,
  );
  const heaps = views.filter((v) => v.stages.length).map((v) => `${VIEWS[v.view].label} ${fmt(v.stages.at(-1).heapMb)} MB`);
  if (heaps.length) notes.push(`page JS heap at the end of each view's run (a fresh page per view): ${heaps.join(", ")}`);
  notes.push(`API bodies: /v1/nodes ${fmt((node.stats.bytes.nodes ?? 0) / 1024)} KB, /v1/workflows?scope=mesh ${fmt((node.stats.bytes.workflows ?? 0) / 1024)} KB; event generation in this process took ${fmt(node.stream.genMs)} ms in all`);
  if (build.stale.length) notes.push(`WARNING: the devtools build is older than ${build.stale.join(", ")}; rebuild it (cd apps/devtools && npx vite build) to measure the current code`);
  console.log(`\n${notes.join("\n")}`);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const build = checkBuild();
  if (build.stale.length) log(`WARNING: ${build.stale.join(", ")} newer than apps/devtools/dist: measuring an old build`);
  log(`node ${process.version}, ${cpus().length} cpus; rates ${opts.rates.join(", ")} ev/s, ${opts.stageMs} ms each; views ${opts.views.join(", ")}`);

  const mesh = buildMesh(MESH);
  const node = await startFakeNode({ distDir: DIST, mesh, WebSocketServer });
  log(`fake node at ${node.url}/devtools (${MESH.nodes} nodes, ${MESH.workflows} workflows, ${MESH.actors} actors; watched workflow ${mesh.watched})`);

  let browser;
  const closeAll = async () => {
    await browser?.close().catch(() => {});
    await node.close().catch(() => {});
  };
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.once(signal, () => {
      void closeAll().finally(() => process.exit(130));
    });
  }
  try {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    log(`chromium ${browser.version()}`);
    const bench = new Bench(browser, node, mesh, opts);

    log(`cold loads, ${opts.loads} of each ...`);
    const loads = await bench.measureLoads();
    const views = [];
    for (const view of opts.views) {
      log(`throughput with the ${VIEWS[view].label} open ...`);
      views.push(await bench.measureView(view));
    }

    console.log("");
    report({ loads, views, opts, build, node });
    if (bench.pageErrors.length) {
      console.error(`\nthe page reported ${bench.pageErrors.length} error(s):\n  ${[...new Set(bench.pageErrors)].slice(0, 10).join("\n  ")}`);
      process.exitCode = 1;
    }
  } finally {
    await closeAll();
  }
}

main().catch((err) => {
  console.error(`bench failed: ${err.stack ?? err}`);
  process.exitCode = 1;
});
