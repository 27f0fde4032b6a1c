import { timingSafeEqual } from "node:crypto";
import { ShoalError, describeZodError } from "@shoal/protocol";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { z } from "zod";
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
}

export type Handler = (ctx: RequestContext) => Promise<Reply> | Reply;

/**
 * The API's route table on the Fastify app: `:param` paths, a bearer check when the cluster has
 * a secret, bodies checked with zod, and a 405 naming the methods a path takes. Failures are
 * thrown; the app's error handler turns them into the error body.
 */
export class Router {
  private readonly methodsByPath = new Map<string, string[]>();

  constructor(
    private readonly app: FastifyInstance,
    private readonly secret: string | undefined,
  ) {}

  /** Adds a route; `open` ones need no secret (liveness probes). */
  add(method: string, path: string, handler: Handler, options: { open?: boolean } = {}): this {
    const methods = this.methodsByPath.get(path) ?? [];
    this.methodsByPath.set(path, [...methods, method]);
    this.app.route({
      method,
      url: path,
      // A hook runs before the body is read: a caller without the secret costs no parsing.
      ...(!options.open && this.secret !== undefined && { onRequest: this.checkSecret }),
      handler: async (request, reply) => {
        const out = await handler(contextOf(request));
        return reply
          .code(out.status ?? 200)
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

  private readonly checkSecret = async (request: FastifyRequest): Promise<void> => {
    const expected = Buffer.from(`Bearer ${this.secret}`);
    const given = Buffer.from(request.headers.authorization ?? "");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new ShoalError("SHOAL_ERR_UNAUTHORIZED", "this node needs the cluster secret as 'Authorization: Bearer <secret>'");
    }
  };
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
