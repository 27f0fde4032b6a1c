// The HTTP benchmark's load generator, a child process of run.mjs (IPC): closed-loop GETs over
// keep-alive connections, one latency sample per request. Messages:
//   { type: "load", port, path, connections, durationMs } -> { type: "load", requests, errors, elapsedMs, p50Ms, p99Ms }
//   { type: "stop" } -> exits
import { Agent, get } from "node:http";
import { percentile } from "../lib/stats.mjs";

function once(agent, port, path) {
  return new Promise((resolve) => {
    const req = get({ host: "127.0.0.1", port, path, agent }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode === 200));
    });
    req.on("error", () => resolve(false));
  });
}

async function load({ port, path, connections, durationMs }) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const latencies = [];
  let errors = 0;
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        const ok = await once(agent, port, path);
        latencies.push(performance.now() - t);
        if (!ok) errors++;
      }
    }),
  );
  const elapsedMs = performance.now() - start;
  agent.destroy();
  return { requests: latencies.length, errors, elapsedMs, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) };
}

process.on("message", (msg) => {
  if (msg.type === "stop") process.exit(0);
  if (msg.type === "load") {
    load(msg).then(
      (result) => process.send({ type: "load", ...result }),
      (err) => process.send({ type: "error", message: String(err?.stack ?? err) }),
    );
  }
});
process.on("disconnect", () => process.exit(0));
