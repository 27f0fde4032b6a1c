import { type IncomingMessage, type Server, type ServerOptions, type ServerResponse, createServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Socket } from "node:net";
import { LogLimiter, type Logger, ShoalError, isShoalError } from "@shoal/protocol";
import { type TlsMaterial, refuseUpgrade } from "@shoal/transport";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { errorReply } from "./errorReply.js";
import { jsonDeeperThan } from "./jsonDepth.js";
import type { OriginPolicy } from "./OriginPolicy.js";

/**
 * How long the HTTP side waits for a client; the README says why each value. None of them runs
 * while a handler works on its answer, so a `?wait=1` that waits for minutes is never cut.
 */
export const HTTP_TIMEOUTS = {
  /** From the connection (or the previous answer) to the end of the request's headers. */
  headersTimeoutMs: 10_000,
  /** From the connection (or the previous answer) to the end of the request's body. */
  requestTimeoutMs: 60_000,
  /** An idle keep-alive connection between two requests. */
  keepAliveTimeoutMs: 5_000,
  /** How often node:http looks for clients past the two above: a late one is cut within this. */
  checkIntervalMs: 1_000,
  /** After answering a request whose body had not all come, how long the rest is read and dropped (lingering close). */
  lingerMs: 2_000,
};

/** The most a lingering close reads and drops before it gives up on the client and closes. */
export const LINGER_MAX_BYTES = 16 * 1024 * 1024;

/** Request line and headers; past it node:http refuses the request (431). */
export const MAX_HEADER_BYTES = 16 * 1024;

export const JSON_TYPE = "application/json; charset=utf-8";

export interface HttpServerOptions {
  logger: Logger;
  /** `--max-body-bytes`: larger bodies get 413 SHOAL_ERR_BODY_TOO_LARGE. */
  maxBodyBytes: number;
  /** `--max-json-depth`: deeper bodies get 400 SHOAL_ERR_TOO_DEEP before anything parses them. */
  maxJsonDepth: number;
  /** Which Host and Origin headers are answered (DNS rebinding, cross-site requests); all when absent. */
  origins?: OriginPolicy;
  /**
   * `--tls-dir`: serve https. A client certificate is asked for but not required: peers present
   * theirs for `/mesh` (the transport checks it), API callers prove themselves with tokens.
   */
  tls?: TlsMaterial;
  /** Shorter timeouts, for tests. */
  timeouts?: Partial<typeof HTTP_TIMEOUTS>;
}

export interface HttpServer {
  /** The port's node:http server: listen on it; its `upgrade` listener takes /mesh and /v1/inspect. */
  readonly server: Server;
  /** The Fastify app that answers its requests; the routes go here (see Router). */
  readonly app: FastifyInstance;
  /** Serves requests once every route is added; requests that came before it wait for it. */
  start(): Promise<void>;
}

/**
 * The HTTP side of the node's port: node:http with timeouts for slow and idle clients, Fastify
 * on it for routing and bodies, and every refusal, down to bytes that are not HTTP at all,
 * answered with a 4xx and `{"error":{"code","message","path"?}}`. Only a handler's own bug is
 * a 500 (SHOAL_ERR_INTERNAL, logged once with its stack).
 */
export function createHttpServer(options: HttpServerOptions): HttpServer {
  const timeouts = { ...HTTP_TIMEOUTS, ...options.timeouts };
  const log = options.logger.child({ component: "http" });
  const malformed = new LogLimiter(log);
  let routing: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const waiting: [IncomingMessage, ServerResponse][] = [];
  const httpOptions: ServerOptions = {
    headersTimeout: timeouts.headersTimeoutMs,
    requestTimeout: timeouts.requestTimeoutMs,
    connectionsCheckingInterval: timeouts.checkIntervalMs,
    maxHeaderSize: MAX_HEADER_BYTES,
    // node:http would answer a request without Host with a bare 400; routing answers it instead.
    requireHostHeader: false,
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    answering.set(req.socket, req);
    if (routing) routing(req, res);
    else waiting.push([req, res]);
  };
  const tls = options.tls;
  const server: Server = tls
    ? createHttpsServer({ ...httpOptions, ca: tls.ca, cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: false }, onRequest)
    : createServer(httpOptions, onRequest);
  if (tls) {
    // A client that fails the TLS handshake never became a request; it is counted in the log, at a rate.
    server.on("tlsClientError", (err: NodeJS.ErrnoException, socket: Socket) => {
      malformed.info({ cause: err.code ?? err.message, remote: socket.remoteAddress }, "refused a TLS handshake");
      socket.destroy();
    });
  }
  // The answer's socket: TLS wraps the TCP one, and node:http closes the TLS one.
  server.on(tls ? "secureConnection" : "connection", (socket: Socket) => lingerOnClose(socket, timeouts.lingerMs));
  server.keepAliveTimeout = timeouts.keepAliveTimeoutMs;
  // No inactivity cut on a connection whose answer is pending: that is a long poll waiting.
  server.timeout = 0;

  const refusalOf = (err: unknown, request: FastifyRequest): ShoalError | undefined => {
    if (isShoalError(err)) return err;
    const { code, statusCode, message } = err as { code?: string; statusCode?: number; message?: string };
    switch (code) {
      case "FST_ERR_BAD_URL":
      case "FST_ERR_MAX_PARAM_LENGTH":
        return new ShoalError("SHOAL_ERR_BAD_URL", `${clip(request.url)} cannot be decoded: bad percent-encoding, or not UTF-8`);
      case "FST_ERR_CTP_BODY_TOO_LARGE":
        return new ShoalError("SHOAL_ERR_BODY_TOO_LARGE", `request body is over ${options.maxBodyBytes} bytes (--max-body-bytes)`);
      case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
        return new ShoalError("SHOAL_ERR_UNSUPPORTED_MEDIA_TYPE", `request bodies are application/json, not ${clip(request.headers["content-type"] ?? "untyped")}`);
    }
    // Fastify's other refusals and the request stream's (a body shorter than its Content-Length,
    // a client gone mid-body) carry a 4xx: the client's doing, not a bug.
    if (typeof statusCode === "number" && statusCode >= 400 && statusCode < 500) return new ShoalError("SHOAL_ERR_BAD_REQUEST", `bad request: ${message}`);
    return undefined;
  };
  const sendError = (reply: FastifyReply, err: unknown): void => {
    let refusal = refusalOf(err, reply.request);
    if (!refusal) {
      log.error({ err, method: reply.request.method, url: reply.request.url }, "request handler failed");
      refusal = new ShoalError("SHOAL_ERR_INTERNAL", (err as Error)?.message ?? String(err));
    }
    const { status, headers, body } = errorReply(refusal);
    reply.code(status).headers(headers).type(JSON_TYPE).send(JSON.stringify(body));
  };

  const app = Fastify({
    serverFactory: () => server,
    logger: false,
    bodyLimit: options.maxBodyBytes,
    // HEAD is not an API method: it gets the 405 that names the ones a path takes.
    exposeHeadRoutes: false,
    // Ids in paths are bounded by the header limit, not by Fastify's 100 characters.
    routerOptions: { maxParamLength: MAX_HEADER_BYTES },
    frameworkErrors: (err, request, reply) => sendError(reply, refusalOf(err, request) ?? err),
    clientErrorHandler: (err, socket) => answerMalformed(err, socket, malformed, timeouts.lingerMs),
  });
  app.setErrorHandler((err, _request, reply) => sendError(reply, err));
  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-content-type-options", "nosniff");
    const origins = options.origins;
    if (origins) {
      const refusal = origins.refusal(request.headers);
      if (refusal) throw refusal;
      const cors = origins.corsHeaders(request.headers);
      reply.headers(cors);
      // A preflight from an allowed origin is answered here; the route answers the real request.
      if (request.method === "OPTIONS" && cors["access-control-allow-origin"]) return reply.code(204).send();
    }
    if (tokenInUrl(request.url)) {
      throw new ShoalError("SHOAL_ERR_TOKEN_IN_URL", "API tokens go in the 'Authorization: Bearer <token>' header, never in a URL (URLs end up in logs and browser history)");
    }
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, new ShoalError("SHOAL_ERR_NOT_FOUND", `no route ${request.method} ${clip(pathOf(request.url))}`)));
  // JSON only (no text/plain, no forms): any other body is a 415.
  app.removeAllContentTypeParsers();
  const secureJson = app.getDefaultJsonParser("error", "error") as (request: FastifyRequest, body: string, done: (err: Error | null, value?: unknown) => void) => void;
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, text, done) => {
    const body = text as string;
    // An empty body is no body: POSTs such as cancel need none, with or without a content type.
    if (/^\s*$/.test(body)) return done(null, undefined);
    if (jsonDeeperThan(body, options.maxJsonDepth)) {
      return done(new ShoalError("SHOAL_ERR_TOO_DEEP", `request body nests arrays or objects deeper than ${options.maxJsonDepth} (--max-json-depth)`), undefined);
    }
    // Fastify's parser also refuses __proto__ and constructor.prototype keys.
    secureJson(request, body, (err, value) => done(err ? notJson(body) : null, value));
  });

  return {
    server,
    app,
    async start() {
      await app.ready();
      routing = app.routing;
      for (const [req, res] of waiting.splice(0)) routing(req, res);
    },
  };
}

/** The request each socket is on, for its lingering close. */
const answering = new WeakMap<Socket, IncomingMessage>();
/** Sockets whose last answer is out, read until they close. */
const lingering = new WeakSet<Socket>();
/** How often a lingering socket's byte count is looked at. */
const LINGER_CHECK_MS = 50;

/**
 * nginx's lingering_close. A request refused before its body was read (415, a bad URL, 413 by its
 * Content-Length, bytes node:http cannot parse) is answered and its connection closed while the
 * client is still sending; closing the socket outright makes the kernel answer those bytes with
 * a reset, and a reset can throw away the answer before the client has read it. So node:http's
 * close of such a socket (`destroySoon`, called once the answer is out) half-closes it instead,
 * and `linger` reads on.
 */
function lingerOnClose(socket: Socket, lingerMs: number): void {
  const destroySoon = socket.destroySoon.bind(socket);
  socket.destroySoon = () => {
    if (socket.readableEnded || !socket.readable || answering.get(socket)?.complete !== false) return destroySoon();
    socket.end();
    linger(socket, lingerMs);
  };
}

/**
 * Keeps reading a half-closed socket until the client closes its side, `lingerMs` pass or about
 * `LINGER_MAX_BYTES` more came, then closes it. node:http's parser goes on reading meanwhile: it
 * drops the body of a request answered without it (as on a keep-alive connection), and what it
 * cannot parse comes back to `answerMalformed`, which leaves a lingering socket alone.
 */
function linger(socket: Socket, lingerMs: number): void {
  lingering.add(socket);
  const readBefore = socket.bytesRead;
  const started = Date.now();
  const check = setInterval(() => {
    if (Date.now() - started >= lingerMs || socket.bytesRead - readBefore > LINGER_MAX_BYTES) socket.destroy();
  }, Math.min(LINGER_CHECK_MS, lingerMs));
  socket.once("end", () => socket.destroy());
  socket.once("close", () => clearInterval(check));
}

/**
 * node:http's `clientError`: bytes that are not an HTTP request, headers over the limit, a client
 * too slow to send its request. Answered with the error body where nothing else is being
 * answered on that socket (node's own rule, so that two answers never mix), then the socket
 * goes; a socket that is already broken just goes.
 */
function answerMalformed(err: NodeJS.ErrnoException, socket: Socket, log: LogLimiter, lingerMs: number): void {
  // The rest of what a client sends after its answer comes here when it does not parse.
  if (lingering.has(socket) && err.code !== "ECONNRESET") return;
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (err.code === "ECONNRESET" || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const refusal =
    err.code === "HPE_HEADER_OVERFLOW"
      ? new ShoalError("SHOAL_ERR_HEADERS_TOO_LARGE", `request line and headers are over ${MAX_HEADER_BYTES} bytes`)
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? new ShoalError("SHOAL_ERR_CLIENT_TIMEOUT", "the request did not arrive in time")
        : new ShoalError("SHOAL_ERR_BAD_HTTP", `not an HTTP/1.1 request (${err.code ?? err.message})`);
  log.info({ code: refusal.code, cause: err.code, remote: socket.remoteAddress }, "refused a malformed HTTP request");
  const { status, headers, body } = errorReply(refusal);
  refuseUpgrade(socket, status, body.error, headers);
  // refuseUpgrade's own deadline (1 s) may close it sooner.
  linger(socket, lingerMs);
}

function notJson(text: string): ShoalError {
  try {
    JSON.parse(text);
    return new ShoalError("SHOAL_ERR_BAD_REQUEST", "request body has a __proto__ or constructor.prototype key");
  } catch (err) {
    return new ShoalError("SHOAL_ERR_BAD_REQUEST", `request body is not JSON: ${(err as Error).message}`);
  }
}

/** A `token`-like query parameter, or anything shaped like a Shoal API token, anywhere in the URL. */
function tokenInUrl(url: string): boolean {
  const query = url.indexOf("?");
  if (query >= 0 && /(?:^|&)(?:token|access_token|api_key|apikey)=/i.test(url.slice(query + 1))) return true;
  return /st1\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/.test(url);
}

const pathOf = (url: string) => url.split("?", 1)[0] ?? url;

/** What a client sent, short enough to echo in a message. */
const clip = (text: string) => (text.length > 200 ? `${text.slice(0, 200)}...` : text);
