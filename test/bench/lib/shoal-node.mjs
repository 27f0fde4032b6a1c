// Looking at a real `shoal node` process (apps/node/dist/cli.js) from outside: a port for it to
// listen on, its HTTP API, its memory and the tail of its output.
import { readFileSync } from "node:fs";
import { get } from "node:http";
import { createServer } from "node:net";

/** A port nobody listens on right now (the kernel's pick; another process could take it first). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** GET a JSON path of 127.0.0.1:port; resolves undefined on any failure (node not up yet). */
export function getJson(port, path, timeoutMs = 1_000) {
  return new Promise((resolve) => {
    // agent: false: a fresh connection per poll, so no keep-alive socket is left on the node.
    const req = get({ host: "127.0.0.1", port, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => {
        try {
          resolve(res.statusCode === 200 ? JSON.parse(body) : undefined);
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
  });
}

/** True when GET /healthz answers 200 with `"ok": true`; false while the node is not up yet. */
export const healthy = async (port, timeoutMs) => (await getJson(port, "/healthz", timeoutMs))?.ok === true;

/** Resident memory of process `pid` in MB (Linux: /proc/PID/status). */
export function vmRssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]);
  if (!Number.isFinite(kb)) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return kb / 1024;
}

/**
 * Reads a child's stdout and stderr (which also drains the pipes, so the child never blocks on
 * a full one) and keeps the last 4,000 characters, for an error message; returns () => them.
 */
export function outputTail(child) {
  let output = "";
  const keep = (chunk) => (output = (output + chunk).slice(-4_000));
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  return () => output.trim();
}
