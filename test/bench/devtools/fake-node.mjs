// A stand-in for a `shoal node`, just big enough for the devtools page: the built page at
// /devtools, the three HTTP calls it makes, and `WS /v1/inspect` with a synthetic event stream at
// a rate the benchmark sets. The data are deterministic (seeded), so every run sees the same mesh.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { CONTENT_TYPES } from "../../../apps/node/dist/http/devtoolsAssets.js";


/** The share of each kind of event in the stream (they add up to 1). */
export const MIX = { member: 0.05, workflow: 0.2, placement: 0.1, snapshot: 0.35, event: 0.3 };
/** As the node's hub: each batch carries at most one state per workflow (dirty workflows are coalesced). */
const FLUSH_MS = 100;

/** A small seeded PRNG (mulberry32), so the fake mesh is the same on every run. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = (rand, list) => list[Math.floor(rand() * list.length)];
const pad = (n, width) => String(n).padStart(width, "0");

const CAPABILITIES = ["gpu", "ssd", "eu-west", "us-east", "highmem", "arm64"];
const TOOLS = ["fetch", "transform", "summarize", "embed", "store", "notify", "render", "classify"];
const NAMES = ["nightly-etl", "ingest-feeds", "rebuild-index", "render-reports", "score-leads", "sync-crm", "embed-docs", "backfill"];
const MACHINE_STATES = ["idle", "fetching", "waiting", { running: "retry" }, { running: "steady" }, "done"];
const MACHINE_JSON = MACHINE_STATES.map((v) => JSON.stringify(v));
const EVENT_TYPES = ["TICK", "DATA", "RETRY", "PAUSE", "RESUME", "xstate.init", "CHUNK"];

/**
 * The mesh the fake node pretends to see: `nodes` NodeRows, `workflows` workflows with DAGs of
 * steps (one, `watched`, is bigger: a fan-out of 16), and `actors` actor ids.
 */
export function buildMesh({ nodes: nodeCount = 50, workflows: workflowCount = 1000, actors: actorCount = 3000, seed = 7 } = {}) {
  const rand = rng(seed);
  const self = "n00";
  const nodes = [];
  for (let i = 0; i < nodeCount; i++) {
    const name = `n${pad(i, 2)}`;
    let id = "";
    for (let k = 0; k < 32; k++) id += Math.floor(rand() * 16).toString(16);
    const caps = CAPABILITIES.filter(() => rand() < 0.3);
    const slots = pick(rand, [4, 8, 16, 32]);
    nodes.push({
      name,
      id,
      address: `127.0.0.1:${7400 + i}`,
      status: i === 0 ? "up" : i % 17 === 0 ? "suspect" : i % 23 === 0 ? "down" : "up",
      capabilities: caps,
      tools: TOOLS.filter(() => rand() < 0.5),
      slots,
      running: Math.floor(rand() * slots),
      load: Math.round(rand() * 100) / 100,
      incarnation: 1 + Math.floor(rand() * 4),
      self: i === 0,
      last_seen_ms: i === 0 ? null : Math.floor(rand() * 900),
    });
  }

  const now = Date.now();
  const workflows = [];
  for (let i = 0; i < workflowCount; i++) {
    const id = `wf_${i.toString(36).padStart(8, "0")}`;
    const watched = i === 0;
    // A chain of layers; each step needs one or two of the layer before. The watched one fans out.
    const stepCount = watched ? 8 : 3 + Math.floor(rand() * 8);
    const specs = [];
    for (let s = 0; s < stepCount; s++) {
      const last = specs[s - 1];
      const layer = !last ? 0 : rand() < 0.4 ? last.layer : last.layer + 1;
      const prev = specs.filter((x) => x.layer === layer - 1);
      const needs = prev.length ? [...new Set([pick(rand, prev).id, pick(rand, prev).id])] : [];
      specs.push({ id: `s${s}_${pick(rand, TOOLS)}`, layer, needs, tool: pick(rand, TOOLS), fanout: watched && s === 3 ? 16 : 0 });
    }
    const steps = {};
    for (const spec of specs) {
      const instances = spec.fanout ? Array.from({ length: spec.fanout }, (_, k) => `${spec.id}[${k}]`) : [spec.id];
      for (const inst of instances) {
        steps[inst] = { status: "pending", node: null, attempts: 0, tool: spec.tool, started_at: null, ended_at: null, placement: null, needs: spec.needs, actor: null };
      }
    }
    const statusRoll = rand();
    const status = watched || statusRoll < 0.3 ? "running" : statusRoll < 0.9 ? "complete" : statusRoll < 0.95 ? "failed" : "partial";
    const owner = nodes[i % nodeCount].name;
    const state = {
      workflow_id: id,
      name: `${pick(rand, NAMES)}-${pad(i % 97, 2)}`,
      status,
      steps,
      started_at: new Date(now - i * 37_000 - 60_000).toISOString(),
      ended_at: null,
      owner,
      progress: { done: 0, total: Object.keys(steps).length },
    };
    // Finished ones start finished; running ones part way.
    const order = Object.keys(steps);
    const done = status === "running" ? Math.floor(rand() * order.length) : status === "complete" ? order.length : Math.floor(order.length / 2);
    const wf = { state, order, cursor: 0, rand: rng(seed * 1000 + i), json: new Map(order.map((id) => [id, ""])) };
    for (const id of order) wf.json.set(id, stepJson(id, steps[id]));
    for (let k = 0; k < done; k++) advance(wf, nodes, 2);
    if (status !== "running") {
      state.status = status;
      state.ended_at = new Date(now - i * 37_000).toISOString();
    }
    workflows.push(wf);
  }

  const actors = [];
  for (let i = 0; i < actorCount; i++) {
    const host = nodes[i % nodeCount].name;
    const workflowId = i % 3 === 0 ? workflows[i % workflowCount].state.workflow_id : undefined;
    actors.push({
      id: `${host}~a${i.toString(36)}`,
      supervisor: host,
      host,
      epoch: 1,
      logic: pick(rand, ["counter", "fetcher", "summarizer", "crawler"]),
      workflowId,
      /** The optional `workflowId` field as JSON text. */
      wf: workflowId ? `,"workflowId":"${workflowId}"` : "",
      session: `x:${i}`,
      count: 0,
    });
  }
  return { self, nodes, workflows, actors, watched: workflows[0].state.workflow_id };
}

/** `"id":{...}`, a step as it appears in a state's `steps`. */
const stepJson = (id, step) => `${JSON.stringify(id)}:${JSON.stringify(step)}`;

/**
 * A workflow's state as JSON, from the cached JSON of its steps: only the step that moved is
 * serialised again (this process shares the CPUs with chromium, so it should cost little).
 */
function stateJson(wf) {
  const { state } = wf;
  const steps = [...wf.json.values()].join(",");
  return `{"workflow_id":"${state.workflow_id}","name":${JSON.stringify(state.name)},"status":"${state.status}","steps":{${steps}},"started_at":"${state.started_at}","ended_at":${JSON.stringify(state.ended_at)},"owner":"${state.owner}","progress":{"done":${state.progress.done},"total":${state.progress.total}}}`;
}

/**
 * One step of a workflow moves on: pending -> running -> complete, in order. A finished workflow
 * starts over (a synthetic stream never runs out of updates).
 */
function advance(wf, nodes, moves = 1) {
  const { state, order, rand } = wf;
  for (let m = 0; m < moves; m++) {
    if (wf.cursor >= order.length) {
      for (const id of order) {
        Object.assign(state.steps[id], { status: "pending", node: null, attempts: 0, started_at: null, ended_at: null, placement: null, actor: null });
        wf.json.set(id, stepJson(id, state.steps[id]));
      }
      wf.cursor = 0;
      state.status = "running";
      state.ended_at = null;
      state.progress.done = 0;
      return;
    }
    const id = order[wf.cursor];
    const step = state.steps[id];
    const at = new Date().toISOString();
    if (step.status === "pending") {
      const node = pick(rand, nodes);
      Object.assign(step, { status: "running", node: node.name, attempts: 1, started_at: at, placement: `least loaded: ${node.name} (${node.running}/${node.slots} slots)`, actor: `${node.name}~s${Math.floor(rand() * 1e9).toString(36)}` });
    } else {
      step.status = rand() < 0.03 ? "failed" : "complete";
      step.ended_at = at;
      state.progress.done++;
      wf.cursor++;
      if (wf.cursor >= order.length) {
        state.status = "complete";
        state.ended_at = at;
      }
    }
    wf.json.set(id, stepJson(id, step));
  }
}

/**
 * Makes the events of one batch as JSON text (a JSON array), `count` of them in the proportions
 * of MIX. Workflow states are capped at one per workflow per batch, as the node's hub coalesces
 * them; the watched workflow gets one in every batch that has any.
 */
export function makeBatch(mesh, gen, count) {
  const at = Date.now();
  const node = mesh.self;
  const parts = [];
  const share = (kind) => {
    gen.owed[kind] += count * MIX[kind];
    const n = Math.floor(gen.owed[kind]);
    gen.owed[kind] -= n;
    return n;
  };
  const nMember = share("member");
  const nWorkflow = Math.min(share("workflow"), mesh.workflows.length);
  const nPlacement = share("placement");
  const nSnapshot = share("snapshot");
  const nEvent = share("event");
  // Whatever rounding left over goes to snapshots, so a batch holds exactly `count`.
  const extra = count - (nMember + nWorkflow + nPlacement + nSnapshot + nEvent);

  for (let i = 0; i < nMember; i++) {
    const m = mesh.nodes[gen.member++ % mesh.nodes.length];
    m.running = (m.running + 1) % (m.slots + 1);
    m.load = Math.round((m.running / m.slots) * 100) / 100;
    if (!m.self) m.last_seen_ms = (m.last_seen_ms + 137) % 1000;
    parts.push(JSON.stringify({ kind: "member", at, node, member: m }));
  }
  for (let i = 0; i < nWorkflow; i++) {
    let wf;
    if (i === 0) wf = mesh.workflows[0];
    else {
      gen.workflow = (gen.workflow % (mesh.workflows.length - 1)) + 1;
      wf = mesh.workflows[gen.workflow];
    }
    advance(wf, mesh.nodes);
    parts.push(`{"kind":"workflow","at":${at},"node":"${wf.state.owner}","workflow_id":"${wf.state.workflow_id}","state":${stateJson(wf)}}`);
  }
  // The small kinds are written as text: ids and names here never need escaping.
  for (let i = 0; i < nPlacement; i++) {
    const a = mesh.actors[gen.placement++ % mesh.actors.length];
    // Now and then an actor moves: a new host and a new epoch.
    if (gen.placement % 97 === 0) {
      a.host = mesh.nodes[(gen.placement >> 3) % mesh.nodes.length].name;
      a.epoch++;
    }
    parts.push(`{"kind":"placement","at":${at},"node":"${a.supervisor}","actorId":"${a.id}","logic":"${a.logic}","status":"running","host":"${a.host}","epoch":${a.epoch},"why":"least loaded"${a.wf}}`);
  }
  for (let i = 0; i < nSnapshot + extra; i++) {
    const a = mesh.actors[gen.snapshot++ % mesh.actors.length];
    a.count++;
    const value = MACHINE_JSON[a.count % MACHINE_JSON.length];
    parts.push(
      `{"kind":"actor","at":${at},"node":"${a.host}","actorId":"${a.id}","type":"@xstate.snapshot","sessionId":"${a.session}","snapshot":{"status":"active","value":${value},"context":{"count":${a.count},"items":${a.count % 50},"lastError":null}}${a.wf}}`,
    );
  }
  for (let i = 0; i < nEvent; i++) {
    const a = mesh.actors[gen.event++ % mesh.actors.length];
    parts.push(`{"kind":"actor","at":${at},"node":"${a.host}","actorId":"${a.id}","type":"@xstate.event","sessionId":"${a.session}","event":{"type":"${EVENT_TYPES[gen.event % EVENT_TYPES.length]}","n":${gen.event}}${a.wf}}`);
  }
  return `[${parts.join(",")}]`;
}

/**
 * Starts the fake node on 127.0.0.1 (a port the kernel picks). `WebSocketServer` is `ws`'s,
 * passed in so that this file needs no module resolution of its own.
 */
export async function startFakeNode({ distDir, mesh, WebSocketServer }) {
  const summaries = mesh.workflows.map(({ state }) => ({
    workflow_id: state.workflow_id,
    name: state.name,
    status: state.status,
    owner: state.owner,
    started_at: state.started_at,
    progress: { ...state.progress },
  }));
  const byId = new Map(mesh.workflows.map((wf) => [wf.state.workflow_id, wf]));
  const stats = { requests: 0, bytes: {} };

  const send = (res, status, body, type = "application/json") => {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
    res.writeHead(status, { "content-type": type, "content-length": buf.length, "cache-control": "no-store" });
    res.end(buf);
    return buf.length;
  };
  const notFound = (res, message) => send(res, 404, { error: { code: "SHOAL_ERR_NOT_FOUND", message } });

  const server = createServer((req, res) => {
    stats.requests++;
    const url = new URL(req.url ?? "/", "http://fake.invalid");
    const path = url.pathname;
    try {
      if (req.method !== "GET") return send(res, 405, { error: { code: "SHOAL_ERR_METHOD", message: "GET only" } });
      if (path === "/devtools" || path.startsWith("/devtools/")) {
        const rel = path.replace(/^\/devtools\/?/, "") || "index.html";
        const file = normalize(join(distDir, rel));
        if (!file.startsWith(distDir)) return notFound(res, `no asset ${path}`);
        const ext = extname(file);
        try {
          return send(res, 200, readFileSync(file), CONTENT_TYPES[ext] ?? "application/octet-stream");
        } catch {
          if (ext && ext !== ".html") return notFound(res, `no asset ${path}`);
          return send(res, 200, readFileSync(join(distDir, "index.html")), CONTENT_TYPES[".html"]);
        }
      }
      if (path === "/v1/nodes") {
        stats.bytes.nodes = send(res, 200, { node: mesh.self, nodes: mesh.nodes });
        return;
      }
      if (path === "/v1/workflows") {
        stats.bytes.workflows = send(res, 200, { node: mesh.self, workflows: summaries });
        return;
      }
      const wf = /^\/v1\/workflows\/([^/]+)$/.exec(path);
      if (wf) {
        const found = byId.get(decodeURIComponent(wf[1]));
        if (!found) return notFound(res, `no workflow ${wf[1]}`);
        stats.bytes.workflow = send(res, 200, found.state);
        return;
      }
      return notFound(res, `no route ${path}`);
    } catch (err) {
      send(res, 500, { error: { code: "SHOAL_ERR_INTERNAL", message: String(err?.message ?? err) } });
    }
  });

  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  /** Every inspector socket, with how many events it has been sent and its send backlog. */
  const sockets = new Set();
  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url ?? "/", "http://fake.invalid");
    if (url.pathname !== "/v1/inspect") {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const entry = { ws, sent: 0, maxBuffered: 0, openedAt: Date.now(), series: [] };
      sockets.add(entry);
      ws.on("close", () => sockets.delete(entry));
      ws.on("error", () => {});
      ws.on("message", () => {});
      // Like the node's hub: a new listener first gets the mesh as this node sees it.
      const now = Date.now();
      ws.send(JSON.stringify(mesh.nodes.map((m) => ({ kind: "member", at: now, node: mesh.self, member: m }))));
      entry.sent += mesh.nodes.length;
      entry.series.push([now, entry.sent]);
      stream.onConnect?.(entry);
    });
  });

  // The stream: every FLUSH_MS, as many events as the rate says are due since the rate was set
  // (so a late timer does not lower the rate), in one JSON array to every socket.
  const gen = { owed: { member: 0, workflow: 0, placement: 0, snapshot: 0, event: 0 }, member: 0, workflow: 0, placement: 0, snapshot: 0, event: 0 };
  const stream = {
    rate: 0,
    since: 0,
    due: 0,
    emitted: 0,
    batches: 0,
    genMs: 0,
    bytes: 0,
    onConnect: undefined,
    setRate(rate) {
      this.rate = rate;
      this.since = performance.now();
      this.due = 0;
      this.emitted = 0;
    },
  };
  const timer = setInterval(() => {
    if (stream.rate <= 0 || sockets.size === 0) return;
    const due = Math.floor(((performance.now() - stream.since) / 1000) * stream.rate);
    const count = due - stream.emitted;
    if (count <= 0) return;
    // The batch's time is when it was due (what its events' `at` says), before making it.
    const tick = Date.now();
    const t0 = performance.now();
    const text = makeBatch(mesh, gen, count);
    stream.genMs += performance.now() - t0;
    stream.emitted += count;
    stream.batches++;
    stream.bytes += text.length;
    for (const entry of sockets) {
      if (entry.ws.readyState !== entry.ws.OPEN) continue;
      entry.ws.send(text);
      entry.sent += count;
      entry.series.push([tick, entry.sent]);
      if (entry.series.length > 5_000) entry.series.splice(0, entry.series.length - 4_000);
      entry.maxBuffered = Math.max(entry.maxBuffered, entry.ws.bufferedAmount);
    }
  }, FLUSH_MS);

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();

  return {
    url: `http://127.0.0.1:${port}`,
    stream,
    sockets,
    stats,
    /** Events sent to `entry` by wall-clock time `ms` (Date.now() scale), from its send log. */
    sentBy(entry, ms) {
      let sent = 0;
      for (const [t, n] of entry.series) {
        if (t > ms) break;
        sent = n;
      }
      return sent;
    },
    async close() {
      clearInterval(timer);
      for (const { ws } of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
