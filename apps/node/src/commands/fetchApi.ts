import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { ApiErrorResponseSchema, ShoalError } from "@shoal/protocol";

/** Which node the CLI talks to, and how: https when it has the cluster CA, a token when the node wants one. */
export interface ApiTarget {
  node: string;
  token?: string | undefined;
  /** PEM of the cluster CA (`--ca FILE`): the node's certificate must be signed by it. */
  ca?: string | undefined;
}

/** The CLI flags and environment every API command shares, read once. */
export function apiTarget(flags: { node: string; tokenFile?: string; ca?: string }): ApiTarget {
  const caFile = flags.ca ?? process.env.SHOAL_CA;
  return { node: flags.node, token: readToken(flags.tokenFile), ca: caFile ? readPem(caFile) : undefined };
}

/** GET or POST one API route of a node; a 4xx/5xx becomes the ShoalError the node sent. */
export async function fetchApi(target: ApiTarget, path: string, options: { method?: string; body?: unknown } = {}): Promise<unknown> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const [host, port] = splitAddress(target.node);
  const headers: Record<string, string> = {
    accept: "application/json",
    ...(target.token !== undefined && { authorization: `Bearer ${target.token}` }),
    ...(payload !== undefined && { "content-type": "application/json", "content-length": String(Buffer.byteLength(payload)) }),
  };
  const send = target.ca ? httpsRequest : httpRequest;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = send({ host, port, path, method: options.method ?? "GET", headers, timeout: 10_000, ...(target.ca && { ca: target.ca }) }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("no answer within 10 s"), { code: "ETIMEDOUT" })));
    req.on("error", reject);
    req.end(payload);
  }).catch((err: NodeJS.ErrnoException) => {
    const hint = err.code === "ECONNRESET" && !target.ca ? "; if the node has --tls-dir, give --ca FILE" : "";
    throw new ShoalError("SHOAL_ERR_UNREACHABLE", `cannot reach a node at ${target.node} (${err.code ?? err.message}${hint})`, { cause: err });
  });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (status >= 400) {
    const parsed = ApiErrorResponseSchema.safeParse(body);
    if (parsed.success) throw new ShoalError(parsed.data.error.code, parsed.data.error.message);
    throw new ShoalError("SHOAL_ERR_UNREACHABLE", `${target.node} answered HTTP ${status} to ${path}`);
  }
  return body;
}

function splitAddress(address: string): [string, number] {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  if (!match) throw new ShoalError("SHOAL_ERR_BAD_FLAG", `--node ${address} is not HOST:PORT`);
  return [match[1] as string, Number(match[2])];
}

/** `--token-file`, else `SHOAL_TOKEN`; none for a node without tokens. */
function readToken(file: string | undefined): string | undefined {
  if (file === undefined) return process.env.SHOAL_TOKEN?.trim() || undefined;
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch (err) {
    throw new ShoalError("SHOAL_ERR_BAD_FLAG", `--token-file ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (!text) throw new ShoalError("SHOAL_ERR_BAD_FLAG", `--token-file ${file} is empty`);
  return text;
}

function readPem(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new ShoalError("SHOAL_ERR_BAD_FLAG", `--ca ${file}: ${(err as Error).message}`, { cause: err });
  }
}
