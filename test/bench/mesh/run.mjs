#!/usr/bin/env node
// Mesh benchmark: what one gossip frame of 6,000 invented members costs a node whose table
// already holds 10, 1,000 or 1,024 (the default --max-members) rows. See README.md.
//
//   node test/bench/mesh/run.mjs [--before DIR] [--repeats N]
//
// DIR: a built checkout of an older commit, measured the same way in the same run. Exits 0
// whatever the figures (the output is a report); 1 when something broke.
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { PROTOCOL_VERSION, createCodec } from "@shoal/protocol";
import { WebSocket } from "ws";
import { option } from "../lib/args.mjs";
import { exited, kill, runMain, track } from "../lib/children.mjs";
import { freePort, getJson, outputTail } from "../lib/shoal-node.mjs";
import { median } from "../lib/stats.mjs";
import { table } from "../lib/table.mjs";
import { sleep, until } from "../lib/until.mjs";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const INVENTED = 6_000;
const ROWS = [10, 1_000, 1_024];
/** A case that takes longer is reported as "> 120000" and its node killed. */
const CASE_TIMEOUT_MS = 120_000;
const codec = createCodec();
const log = (line) => process.stderr.write(`[bench] ${line}\n`);

/** Members nobody runs: loopback ports below the ephemeral range, where nothing listens. */
const invented = (from, n) =>
  Array.from({ length: n }, (_, i) => ({
    id: `invented-${from + i}`,
    name: `invented-${from + i}`,
    address: `127.0.0.1:${10_000 + ((from + i) % 20_000)}`,
    capabilities: [],
    tools: ["llm.generate"],
    slots: 8,
    incarnation: 0,
    status: "up",
    running: 0,
  }));

// ---------------------------------------------------------------------------------------------
// 1: the merge alone, MembershipTable in this process.

async function mergeOnly(meshDist) {
  const { MembershipTable } = await import(pathToFileURL(meshDist).href);
  const results = [];
  for (const rows of ROWS) {
    const times = [];
    let after = 0;
    for (let rep = 0; rep < 3; rep++) {
      const self = { ...invented(0, 1)[0], id: "self", name: "self", address: "127.0.0.1:9999" };
      const t = new MembershipTable(self, { maxMembers: 1_024 });
      for (const m of invented(INVENTED, rows - 1)) t.merge(m, m.id); // heard from themselves
      const frame = invented(0, INVENTED);
      const started = performance.now();
      for (const m of frame) t.merge(m, "liar");
      times.push(performance.now() - started);
      after = t.all().length;
    }
    results.push({ rows, ms: median(times), after });
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// 2: a real `shoal node`, fed by a hand-made peer.

async function startNode(cli, dir) {
  const port = await freePort();
  const args = [cli, "node", "--name", "bench-mesh", "--host", "127.0.0.1", "--port", String(port), "--data-dir", join(dir, "node")];
  const child = track(spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] }), "bench-mesh");
  const output = outputTail(child);
  await until(async () => (await getJson(port, "/healthz"))?.ok === true || exited(child), 20_000, "node ready");
  if (exited(child)) throw new Error(`node exited before it was ready:\n${output()}`);
  return { child, port, output };
}

/**
 * Handshake (no secret), then `gossip(members)`: resolves "merged" once the node has read the
 * frame, "cut" if the node closed the link meanwhile, "timeout" after `timeoutMs`.
 */
async function handMadePeer(port) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/mesh`, { maxPayload: 64 * 1024 * 1024 });
  const frames = [];
  let cut = false;
  ws.on("message", (data) => {
    const frame = codec.decode(data);
    // Heartbeats answered, as a live peer would: the node keeps the link and reads every frame.
    if (frame.t === "ping") ws.send(codec.encode({ t: "pong", ts: frame.ts }));
    else frames.push(frame);
  });
  ws.on("error", () => {});
  ws.on("close", () => (cut = true));
  await new Promise((res, rej) => ws.once("open", res).once("error", rej));
  // The node's own address: it does not dial this peer, so it never finds it gone.
  const node = { id: randomUUID(), name: "liar", address: `127.0.0.1:${port}`, capabilities: [], tools: [], slots: 0 };
  ws.send(codec.encode({ t: "hello", v: PROTOCOL_VERSION, cluster: "shoal", node, nonce: randomBytes(32).toString("hex") }));
  await until(() => frames.some((f) => f.t === "hello"), 5_000, "hello");
  ws.send(codec.encode({ t: "auth" }));
  await until(() => frames.some((f) => f.t === "ready"), 5_000, "ready");
  let ts = 0;
  return {
    close: () => ws.terminate(),
    // Frames are read in order: the pong comes once the gossip before it has been merged.
    async gossip(members, timeoutMs = CASE_TIMEOUT_MS) {
      const mine = ++ts;
      ws.send(codec.encode({ t: "gossip", members }));
      ws.send(codec.encode({ t: "ping", ts: mine }));
      const end = performance.now() + timeoutMs;
      for (;;) {
        if (frames.some((f) => f.t === "pong" && f.ts === mine)) return "merged";
        if (cut) return "cut";
        if (performance.now() > end) return "timeout";
        await sleep(2);
      }
    },
  };
}

const rowsOf = async (port) => (await getJson(port, "/v1/nodes", 60_000))?.nodes?.length ?? Number.NaN;
const lagMaxMs = async (port) => {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(CASE_TIMEOUT_MS) });
    return 1000 * Number(/^shoal_nodejs_eventloop_lag_max_seconds ([\d.e+-]+)/m.exec(await res.text())?.[1]);
  } catch {
    return Number.NaN; // still busy
  }
};

async function wholeNode(cli, rows) {
  const dir = mkdtempSync(join(tmpdir(), "shoal-bench-mesh-"));
  let node;
  let peer;
  try {
    node = await startNode(cli, dir);
    peer = await handMadePeer(node.port);
    // The node and the peer are 2 rows; invented ones fill the rest.
    const filled = await peer.gossip(invented(INVENTED, rows - 2));
    if (filled === "timeout") throw new Error(`the node did not take a table of ${rows} within ${CASE_TIMEOUT_MS} ms`);
    await until(async () => (await rowsOf(node.port)) >= rows, CASE_TIMEOUT_MS, `table of ${rows}`);
    if (filled === "cut") {
      // The node was too busy to hear the peer's heartbeats (it did not stay listed): a new link.
      peer.close();
      peer = await handMadePeer(node.port);
    }
    const before = await rowsOf(node.port);
    await lagMaxMs(node.port); // a scrape starts a new window of the event-loop histogram
    let slowest = 0;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const asked = performance.now();
        await getJson(node.port, "/healthz", CASE_TIMEOUT_MS);
        slowest = Math.max(slowest, performance.now() - asked);
        await sleep(10);
      }
    })();
    const sent = performance.now();
    let outcome = await peer.gossip(invented(0, INVENTED));
    // Cut off: the merge is over when the node answers again.
    if (outcome === "cut" && !(await getJson(node.port, "/healthz", Math.max(1, sent + CASE_TIMEOUT_MS - performance.now())))) outcome = "timeout";
    const mergedMs = performance.now() - sent;
    polling = false;
    if (outcome === "timeout") return { rows: before, outcome, mergedMs, healthzMs: Number.NaN, lagMs: Number.NaN, after: Number.NaN };
    await poll;
    return { rows: before, outcome, mergedMs, healthzMs: slowest, lagMs: await lagMaxMs(node.port), after: await rowsOf(node.port) };
  } finally {
    peer?.close();
    if (node) await kill(node.child);
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const args = process.argv.slice(2);
  const beforeDir = option(args, "--before");
  const repeats = Number(option(args, "--repeats") ?? 1);
  const versions = [{ label: "after", root: here("../../..") }];
  if (beforeDir) versions.unshift({ label: "before", root: resolve(beforeDir) });

  const rows = [["version", "table rows", "merge only (ms)", "whole node: read+merged (ms)", "slowest /healthz (ms)", "event loop lag max (ms)", "rows after"]];
  for (const v of versions) {
    log(`${v.label}: MembershipTable alone`);
    const merges = await mergeOnly(join(v.root, "packages/mesh/dist/index.js"));
    for (const m of merges) {
      const runs = [];
      for (let rep = 0; rep < repeats; rep++) {
        log(`${v.label}: a node with ${m.rows} rows, ${INVENTED} invented members in one frame`);
        runs.push(await wholeNode(join(v.root, "apps/node/dist/cli.js"), m.rows));
      }
      const mid = (key) => {
        const value = median(runs.map((r) => r[key]));
        return Number.isNaN(value) ? "-" : value.toFixed(0);
      };
      // "link cut": the node closed the peer's link meanwhile (its heartbeat timed out while it was busy).
      const how = runs.some((r) => r.outcome === "timeout") ? `> ${CASE_TIMEOUT_MS}` : `${mid("mergedMs")}${runs.some((r) => r.outcome === "cut") ? " (link cut)" : ""}`;
      rows.push([v.label, runs[0].rows, m.ms.toFixed(1), how, mid("healthzMs"), mid("lagMs"), `${mid("after")} (table alone: ${m.after})`]);
    }
  }
  console.log(table(rows));
}

runMain(main);
