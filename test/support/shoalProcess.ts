import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { NodeRow, NodesResponse } from "@shoal/protocol";

export const CLI = resolve(import.meta.dirname, "../../apps/node/dist/cli.js");

/** A free loopback port, found by binding port 0. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolvePort(port));
    });
  });
}

export function tempDir(prefix = "shoal-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface NodeProcessOptions {
  name: string;
  port?: number;
  join?: string[];
  dataDir?: string;
  extra?: string[];
  env?: Record<string, string>;
  /** How this test talks to the node's API: https with this CA (PEM), and a token on every call. */
  client?: ApiClientOptions;
}

export interface ApiClientOptions {
  ca?: string;
  token?: string;
}

export interface ApiAnswer {
  status: number;
  json: any;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One API call with node:http(s) (fetch cannot take a CA); `json` is undefined when the body is not JSON. */
export function apiCall(
  address: string,
  method: string,
  path: string,
  options: ApiClientOptions & { body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ApiAnswer> {
  const payload = options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body);
  const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
  const headers: Record<string, string> = {
    ...(options.token !== undefined && { authorization: `Bearer ${options.token}` }),
    ...(payload !== undefined && { "content-type": "application/json" }),
    ...options.headers,
  };
  const send = options.ca ? httpsRequest : httpRequest;
  return new Promise((resolveCall, reject) => {
    const req = send({ host, port, method, path, headers, ...(options.ca && { ca: options.ca }), timeout: options.timeoutMs ?? 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolveCall({ status: res.statusCode ?? 0, json, text, headers: res.headers });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} on ${address}: no answer in time`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** One real `shoal node` process, with its JSON log lines kept for assertions. */
export class NodeProcess {
  readonly name: string;
  readonly port: number;
  readonly dataDir: string;
  readonly logs: Record<string, unknown>[] = [];
  stderr = "";
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  private readonly args: string[];
  private readonly env: Record<string, string>;
  readonly client: ApiClientOptions;

  constructor(options: NodeProcessOptions & { port: number }) {
    this.name = options.name;
    this.client = options.client ?? {};
    this.port = options.port;
    this.dataDir = options.dataDir ?? join(tempDir(), options.name);
    this.args = [
      CLI, "node", "--name", options.name, "--host", "127.0.0.1", "--port", String(options.port),
      "--data-dir", this.dataDir, "--log-level", "debug",
      ...(options.join?.length ? ["--join", options.join.join(",")] : []),
      ...(options.extra ?? []),
    ];
    this.env = options.env ?? {};
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): this {
    const child = spawn(process.execPath, this.args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...this.env } });
    this.child = child;
    let buffered = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        try {
          this.logs.push(JSON.parse(line));
        } catch {
          this.logs.push({ msg: line, unparsed: true });
        }
      }
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exited = new Promise((resolveExit) => child.once("exit", (code) => resolveExit(code)));
    return this;
  }

  async ready(timeoutMs = 15_000): Promise<this> {
    await until(async () => (await this.get("/healthz")).json?.ok === true, timeoutMs, () => `${this.name} never became healthy; stderr: ${this.stderr.slice(-500)}`);
    return this;
  }

  async get(path: string, headers: Record<string, string> = {}): Promise<ApiAnswer> {
    return apiCall(this.address, "GET", path, { ...this.client, headers });
  }

  async post(path: string, body?: unknown): Promise<{ status: number; json: any }> {
    return this.request("POST", path, body);
  }

  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiAnswer> {
    return apiCall(this.address, method, path, { ...this.client, body, headers, timeoutMs: 60_000 });
  }

  /** One unlabelled value of `/metrics`; NaN when the node does not report it. */
  async metric(name: string): Promise<number> {
    const text = (await this.get("/metrics")).text;
    return Number(new RegExp(`^${name} (\\d+(?:\\.\\d+)?)$`, "m").exec(text)?.[1] ?? Number.NaN);
  }

  async nodes(headers: Record<string, string> = {}): Promise<NodeRow[]> {
    return ((await this.get("/v1/nodes", headers)).json as NodesResponse).nodes;
  }

  async statusOf(name: string): Promise<string | undefined> {
    return (await this.nodes()).find((n) => n.name === name)?.status;
  }

  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  /** Resolves with the exit code once the process has ended. */
  async exit(): Promise<number | null> {
    return this.exited ?? null;
  }

  async kill(sig: NodeJS.Signals = "SIGKILL"): Promise<number | null> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return this.exit();
    this.child.kill(sig);
    return this.exit();
  }

  /** Starts the same node again: same name, port and data dir, plus any extra flags. */
  restart(extra: string[] = []): this {
    this.args.push(...extra);
    return this.start();
  }

  logsMatching(fn: (line: Record<string, unknown>) => boolean): Record<string, unknown>[] {
    return this.logs.filter(fn);
  }
}

export interface Mesh {
  nodes: NodeProcess[];
  close(): Promise<void>;
}

/** Starts `names.length` nodes; every node after the first joins through the first. */
export async function startMesh(names: string[], options: { extra?: string[]; env?: Record<string, string>; client?: ApiClientOptions } = {}): Promise<Mesh> {
  const nodes: NodeProcess[] = [];
  for (const name of names) {
    const port = await freePort();
    const seed = nodes[0];
    nodes.push(new NodeProcess({ name, port, join: seed ? [seed.address] : [], ...options }).start());
  }
  await Promise.all(nodes.map((n) => n.ready()));
  return { nodes, close: () => stopAll(nodes) };
}

export async function stopAll(nodes: NodeProcess[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.kill("SIGKILL")));
}

/** Polls `check` until it holds; fails with `describe()` after `timeoutMs`. */
export async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, describe: () => string = () => "condition"): Promise<number> {
  const start = Date.now();
  let lastError: unknown;
  while (Date.now() - start < timeoutMs) {
    try {
      if (await check()) return Date.now() - start;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms: ${describe()}${lastError ? ` (last error: ${(lastError as Error).message})` : ""}`);
}

/** Runs the CLI as a child process without blocking this one (the nodes under test answer over HTTP). */
export function runCliAsync(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runScript(CLI, args, env);
}

/** Runs a Node.js script to completion and collects its output. */
export function runScript(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("exit", (code) => resolveRun({ code, stdout, stderr }));
  });
}

/** Runs the CLI to completion (for flag and config checks). */
export function runCli(args: string[], options: { timeoutMs?: number } = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: options.timeoutMs ?? 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
