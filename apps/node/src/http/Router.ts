import { ShoalError, describeZodError } from "@shoal/protocol";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { z } from "zod";
import { type Scope, type TokenVerifier, scopeCovers } from "../auth/apiTokens.js";
import { JSON_TYPE } from "./createHttpServer.js";

export interface RequestContext {
  url: URL;
  /** Path parameters, percent-decoded (a path that does not decode is a 400 SHOAL_ERR_BAD_URL before this). */
  params: Record<string, string>;
  /** The JSON body checked against `schema` (no body reads as `{}`); a 400 naming the path when it does not fit. */
  body<T extends z.ZodType>(schema: T): z.infer<T>;
}

export interface Reply {
  status?: number;
  json?: unknown;
  /** A raw body (Prometheus text, static assets). */
  text?: string | Buffer;
  contentType?: string;
  /** More response headers (the inspector's Content-Security-Policy). */
  headers?: Record<string, string>;
}

/** Who may call a route: anyone (liveness probes, the inspector's page), or a token of this scope. */
export type Access = "open" | Scope;

export type Handler = (ctx: RequestContext) => Promise<Reply> | Reply;

/**
 * The API's route table on the Fastify app: `:param` paths, an API token check when the node has
 * a token key (GET routes want `read`, the others `submit`, unless the route says), bodies checked
 * with zod, and a 405 naming the methods a path takes. Failures are thrown; the app's error
 * handler turns them into the error body. Without a token key every route is open: that is a
 * node on loopback, or one told `--insecure`.
 */
export class Router {
  private readonly methodsByPath = new Map<string, string[]>();

  constructor(
    private readonly app: FastifyInstance,
    private readonly tokens: TokenVerifier | undefined,
  ) {}

  /** Adds a route. */
  add(method: string, path: string, handler: Handler, options: { access?: Access } = {}): this {
    const access = options.access ?? (method === "GET" ? "read" : "submit");
    const methods = this.methodsByPath.get(path) ?? [];
    this.methodsByPath.set(path, [...methods, method]);
    this.app.route({
      method,
      url: path,
      // A hook runs before the body is read: a caller without a token costs no parsing.
      ...(access !== "open" && this.tokens !== undefined && { onRequest: this.tokenCheck(this.tokens, access) }),
      handler: async (request, reply) => {
        const out = await handler(contextOf(request));
        return reply
          .code(out.status ?? 200)
          .headers(out.headers ?? {})
          .type(out.contentType ?? JSON_TYPE)
          .send(out.text ?? JSON.stringify(out.json));
      },
    });
    return this;
  }

  /** Answers the other methods of every path with 405; call once, after the last add(). */
  seal(): void {
    for (const [path, methods] of this.methodsByPath) {
      const allowed = methods.join(", ");
      this.app.route({
        method: this.app.supportedMethods.filter((m) => !methods.includes(m)),
        url: path,
        onRequest: async (request, reply) => {
          reply.header("allow", allowed);
          throw new ShoalError("SHOAL_ERR_METHOD_NOT_ALLOWED", `${request.url.split("?", 1)[0]} does not take ${request.method}; it takes ${allowed}`);
        },
        handler: async () => undefined,
      });
    }
  }

  private tokenCheck(tokens: TokenVerifier, needed: Scope) {
    return async (request: FastifyRequest): Promise<void> => {
      const claims = tokens.verify(bearerToken(request.headers.authorization));
      if (!scopeCovers(claims.scope, needed)) {
        throw new ShoalError("SHOAL_ERR_FORBIDDEN", `${request.method} ${request.url.split("?", 1)[0]} needs a token of scope ${needed}; token ${claims.id} has ${claims.scope}`);
      }
    };
  }
}

/** The token of an `Authorization: Bearer TOKEN` header; SHOAL_ERR_UNAUTHORIZED without one. */
export function bearerToken(header: string | undefined): string {
  const match = /^Bearer +(\S+)\s*$/i.exec(header ?? "");
  if (!match?.[1]) throw new ShoalError("SHOAL_ERR_UNAUTHORIZED", "this node wants an API token as 'Authorization: Bearer <token>' (shoal token create)");
  return match[1];
}

function contextOf(request: FastifyRequest): RequestContext {
  return {
    url: new URL(request.url, "http://node.invalid"),
    params: request.params as Record<string, string>,
    body(schema) {
      const parsed = schema.safeParse(request.body ?? {});
      if (!parsed.success) {
        const { message, path } = describeZodError(parsed.error);
        throw new ShoalError("SHOAL_ERR_BAD_REQUEST", `request body: ${message}`, { path });
      }
      return parsed.data;
    },
  };
}
