import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type ErrorBody, type Logger, ShoalError, describeZodError, isShoalError } from "@shoal/protocol";
import type { z } from "zod";
import { allErrors } from "../errors.js";

/** Largest request body the API reads. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface RequestContext {
  req: IncomingMessage;
  url: URL;
  params: Record<string, string>;
  /** The JSON body checked against `schema`; a 400 naming the path when it does not fit. */
  body<T extends z.ZodType>(schema: T): Promise<z.infer<T>>;
}

export interface Reply {
  status?: number;
  json?: unknown;
  /** A raw body (Prometheus text, static assets). */
  text?: string | Buffer;
  contentType?: string;
}

export type Handler = (ctx: RequestContext) => Promise<Reply> | Reply;

interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: Handler;
  open: boolean;
}

/**
 * A small router for the node's JSON API: `:param` paths, a bearer check when the cluster has
 * a secret, bodies read with a size limit and checked with zod, and every failure turned into
 * `{"error":{"code","message","path"?}}` with the status of its code, never a dropped connection.
 */
export class Router {
  private readonly routes: Route[] = [];
  private readonly log: Logger;

  constructor(
    private readonly secret: string | undefined,
    logger: Logger,
  ) {
    this.log = logger.child({ component: "http" });
  }

  /** Adds a route; `open` ones need no secret (liveness probes). */
  add(method: string, path: string, handler: Handler, options: { open?: boolean } = {}): this {
    const keys: string[] = [];
    const pattern = new RegExp(
      `^${path.replace(/:([a-zA-Z_]+)/g, (_m, key: string) => {
        keys.push(key);
        return "([^/]+)";
      })}$`,
    );
    this.routes.push({ method, pattern, keys, handler, open: options.open ?? false });
    return this;
  }

  readonly handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let reply: Reply;
    try {
      reply = await this.dispatch(req);
    } catch (err) {
      reply = this.errorReply(err);
    }
    if (res.headersSent) return;
    res.writeHead(reply.status ?? 200, { "content-type": reply.contentType ?? "application/json; charset=utf-8" });
    res.end(reply.text ?? JSON.stringify(reply.json));
  };

  private async dispatch(req: IncomingMessage): Promise<Reply> {
    const url = new URL(req.url ?? "/", "http://node.invalid");
    const matches = this.routes
      .map((route) => ({ route, m: route.pattern.exec(url.pathname) }))
      .filter((x): x is { route: Route; m: RegExpExecArray } => x.m !== null);
    if (matches.length === 0) throw new ShoalError("SHOAL_ERR_NOT_FOUND", `no route ${req.method} ${url.pathname}`);
    const match = matches.find((x) => x.route.method === req.method);
    if (!match) {
      const allowed = [...new Set(matches.map((x) => x.route.method))].join(", ");
      throw new ShoalError("SHOAL_ERR_METHOD_NOT_ALLOWED", `${url.pathname} does not take ${req.method}; it takes ${allowed}`);
    }
    if (!match.route.open && !this.authorized(req)) {
      throw new ShoalError("SHOAL_ERR_UNAUTHORIZED", "this node needs the cluster secret as 'Authorization: Bearer <secret>'");
    }
    const params: Record<string, string> = {};
    match.route.keys.forEach((key, i) => {
      params[key] = decodeURIComponent(match.m[i + 1] ?? "");
    });
    return match.route.handler({ req, url, params, body: (schema) => readBody(req, schema) });
  }

  private authorized(req: IncomingMessage): boolean {
    if (this.secret === undefined) return true;
    const expected = Buffer.from(`Bearer ${this.secret}`);
    const given = Buffer.from(req.headers.authorization ?? "");
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private errorReply(err: unknown): Reply {
    if (isShoalError(err)) {
      const status = allErrors[err.code]?.status ?? 400;
      return { status, json: { error: err.toBody() satisfies ErrorBody } };
    }
    this.log.error({ err }, "request handler failed");
    return { status: 500, json: { error: { code: "SHOAL_ERR_INTERNAL", message: (err as Error)?.message ?? String(err) } } };
  }
}

async function readBody<T extends z.ZodType>(req: IncomingMessage, schema: T): Promise<z.infer<T>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ShoalError("SHOAL_ERR_BAD_REQUEST", `request body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  let value: unknown;
  try {
    value = text.trim() === "" ? {} : JSON.parse(text);
  } catch (err) {
    throw new ShoalError("SHOAL_ERR_BAD_REQUEST", `request body is not JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const { message, path } = describeZodError(parsed.error);
    throw new ShoalError("SHOAL_ERR_BAD_REQUEST", `request body: ${message}`, { path });
  }
  return parsed.data;
}
