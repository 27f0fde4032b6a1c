// Child process: the HTTP load generator of the workflow benchmark. Forked by run.mjs; talks to
// `shoal node` processes on loopback only, through keep-alive connections, and answers the
// parent's commands over IPC, one at a time:
//
//   { type: "closed", ports, concurrency, durationMs, spec }
//     `concurrency` submitters, each in a loop: POST /v1/workflows?wait=1 to the next node in
//     `ports` (round robin), until `durationMs` has passed; the ones in flight then finish.
//     -> { type: "closed", count, errors, seconds, latency: {p50, p99}, nodesUsed, firstError, resent }
//
//   { type: "burst", ports, total, httpConcurrency, pollIntervalMs, spec, gateFile }
//     submits `total` workflows (POST, 202) round robin with at most `httpConcurrency` requests
//     open; their first step waits for `gateFile`. Once all are accepted it creates the file
//     (the release) and polls GET /v1/workflows/:id/result on each workflow's own node until
//     every one has ended; then reads each one's state for its start and end times.
//     -> { type: "burst", submitted, ended, submitMs, finishMs, lastEndMs, statuses, errors,
//          peakInFlight, totalTime: {p50, max}, nodesUsed, firstError, resent }
//
//   { type: "stop" } -> closes its connections and exits.
import { writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { percentile } from "../lib/stats.mjs";

const agents = new Map();

/** One keep-alive agent per node: a submitter reuses its connection for every request. */
function agentFor(port, sockets) {
  let agent = agents.get(port);
  if (!agent || agent.maxSockets < sockets) {
    agent?.destroy();
    // fifo: every open connection takes its turn, so none sits idle long enough for the node's
    // keep-alive timeout (5 s) to close it under a request (lifo, the default, parks some).
    agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets, scheduling: "fifo" });
    agents.set(port, agent);
  }
  return agent;
}

/** Requests sent again after a kept-alive connection was reset under them (see `call`). */
let resent = 0;

/**
 * One HTTP call to 127.0.0.1:port; resolves { status, json } (json undefined when unparsable).
 * A request that went out on a reused keep-alive connection and met ECONNRESET/EPIPE before any
 * answer is sent once more on a fresh one: the node closed that idle connection as the request
 * arrived, so it never read it (the retry Node's http docs suggest for `reusedSocket`).
 */
async function call(port, method, path, body, sockets) {
  try {
    return await callOnce(port, method, path, body, sockets);
  } catch (err) {
    if (!err.reusedSocket || !["ECONNRESET", "EPIPE"].includes(err.code)) throw err;
    resent++;
    return callOnce(port, method, path, body, sockets);
  }
}

function callOnce(port, method, path, body, sockets) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let res;
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        agent: agentFor(port, sockets),
        headers: payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
        timeout: 120_000,
      },
      (response) => {
        res = response;
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => {
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, json, text });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} on :${port} timed out`)));
    req.on("error", (err) => {
      err.reusedSocket = req.reusedSocket && !res;
      err.message += ` (${req.reusedSocket ? "reused" : "new"} connection)`;
      reject(err);
    });
    req.end(payload);
  });
}

const describe = (res) => `HTTP ${res.status}: ${(res.text ?? "").slice(0, 300)}`;

/** How many workflows used each node for at least one step. */
function tally(into, nodes) {
  for (const n of nodes ?? []) into[n] = (into[n] ?? 0) + 1;
}

async function closed({ ports, concurrency, durationMs, spec }) {
  const resentBefore = resent;
  const latencies = [];
  const nodesUsed = {};
  let count = 0;
  let errors = 0;
  let firstError;
  let next = 0;
  const start = performance.now();
  const deadline = start + durationMs;
  const submitter = async () => {
    while (performance.now() < deadline) {
      const port = ports[next++ % ports.length];
      const t0 = performance.now();
      try {
        const res = await call(port, "POST", "/v1/workflows?wait=1", spec, concurrency);
        if (res.status === 200 && res.json?.status === "complete") {
          count++;
          latencies.push(performance.now() - t0);
          tally(nodesUsed, res.json.nodes_used);
        } else {
          errors++;
          firstError ??= describe(res);
        }
      } catch (err) {
        errors++;
        firstError ??= String(err?.message ?? err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, submitter));
  const seconds = (performance.now() - start) / 1_000;
  const latency = { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
  return { count, errors, seconds, latency, nodesUsed, firstError, resent: resent - resentBefore };
}

/** Runs `worker(item)` over `items` with at most `limit` running at once. */
async function pool(items, limit, worker) {
  let i = 0;
  const lane = async () => {
    while (i < items.length) await worker(items[i++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

async function burst({ ports, total, httpConcurrency, pollIntervalMs, spec, gateFile }) {
  const resentBefore = resent;
  let errors = 0;
  let firstError;
  const fail = (what) => {
    errors++;
    firstError ??= what;
  };
  const start = performance.now();
  const submitted = []; // { id, port }
  await pool(
    Array.from({ length: total }, (_, k) => ports[k % ports.length]),
    httpConcurrency,
    async (port) => {
      try {
        const res = await call(port, "POST", "/v1/workflows", spec, httpConcurrency);
        if (res.status === 202 && typeof res.json?.workflow_id === "string") submitted.push({ id: res.json.workflow_id, port });
        else fail(`submit: ${describe(res)}`);
      } catch (err) {
        fail(`submit: ${err?.message ?? err}`);
      }
    },
  );
  const submitMs = performance.now() - start;

  // The release: every gate opens within its poll interval (20 ms).
  const releasedAt = Date.now();
  const released = performance.now();
  writeFileSync(gateFile, "open\n");

  // Poll every workflow still running, in passes; 409 means "still running".
  const results = new Map();
  let pending = submitted;
  while (pending.length > 0) {
    const still = [];
    await pool(pending, httpConcurrency, async (wf) => {
      try {
        const res = await call(wf.port, "GET", `/v1/workflows/${wf.id}/result`, undefined, httpConcurrency);
        if (res.status === 200) results.set(wf.id, res.json);
        else if (res.status === 409) still.push(wf);
        else fail(`result ${wf.id}: ${describe(res)}`);
      } catch (err) {
        fail(`result ${wf.id}: ${err?.message ?? err}`);
      }
    });
    pending = still;
    if (pending.length > 0) await new Promise((r) => setTimeout(r, pollIntervalMs));
    if (performance.now() - released > 120_000) {
      fail(`${pending.length} workflows still running 120 s after the release`);
      break;
    }
  }
  const finishMs = performance.now() - released;

  const statuses = {};
  const nodesUsed = {};
  const totals = [];
  for (const r of results.values()) {
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if (r.status !== "complete") firstError ??= `workflow ${r.workflow_id} ended ${r.status}: ${JSON.stringify(r.failures).slice(0, 300)}`;
    tally(nodesUsed, r.nodes_used);
    totals.push(r.total_time_ms);
  }
  totals.sort((a, b) => a - b);

  // How many were really in flight at once, by the owners' own clocks (one host, one clock):
  // the largest overlap of [started_at, ended_at] over all workflows. Read after the timing.
  const edges = [];
  let lastEnd = Number.NaN;
  await pool(submitted, httpConcurrency, async (wf) => {
    try {
      const res = await call(wf.port, "GET", `/v1/workflows/${wf.id}`, undefined, httpConcurrency);
      if (res.status !== 200 || !res.json?.ended_at) return;
      const ended = Date.parse(res.json.ended_at);
      if (!(ended <= lastEnd)) lastEnd = ended;
      edges.push([Date.parse(res.json.started_at), 1], [ended, -1]);
    } catch {
      // Only for the overlap figure; a miss here is not an error of the workflow.
    }
  });
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]); // an end before a start at the same ms
  let inFlight = 0;
  let peakInFlight = 0;
  for (const [, d] of edges) {
    inFlight += d;
    peakInFlight = Math.max(peakInFlight, inFlight);
  }

  return {
    submitted: submitted.length,
    ended: results.size,
    submitMs,
    finishMs,
    lastEndMs: lastEnd - releasedAt,
    statuses,
    errors,
    peakInFlight,
    totalTime: { p50: percentile(totals, 0.5), max: totals.at(-1) ?? Number.NaN },
    nodesUsed,
    firstError,
    resent: resent - resentBefore,
  };
}

const fail = (err) => process.send({ type: "error", message: `loadgen: ${err?.stack ?? err}` }, () => process.exit(1));
process.on("disconnect", () => process.exit(1)); // the parent died: do not linger

process.on("message", (msg) => {
  switch (msg?.type) {
    case "closed":
      closed(msg).then((answer) => process.send({ type: "closed", ...answer }), fail);
      return;
    case "burst":
      burst(msg).then((answer) => process.send({ type: "burst", ...answer }), fail);
      return;
    case "stop":
      for (const agent of agents.values()) agent.destroy();
      // A normal exit (not a kill) so that `--cpu-prof` can write its profile.
      process.exit(0);
  }
});
process.send({ type: "ready" });
