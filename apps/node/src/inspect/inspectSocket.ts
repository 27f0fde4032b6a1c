import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { InspectFilterSchema, type Logger, ShoalError, describeZodError } from "@shoal/protocol";
import { refuseUpgrade } from "@shoal/transport";
import { type WebSocket, WebSocketServer } from "ws";
import { z } from "zod";
import type { TokenVerifier } from "../auth/apiTokens.js";
import { errorReply } from "../http/errorReply.js";
import type { OriginPolicy } from "../http/OriginPolicy.js";
import { bearerToken } from "../http/Router.js";
import type { InspectHub } from "./InspectHub.js";

export const INSPECT_PATH = "/v1/inspect";

/** A browser that reads slower than this many bytes is cut off rather than buffered forever. */
const MAX_BUFFERED = 8 * 1024 * 1024;

/** Largest message read from an inspector (which has nothing to say): larger ones close it with 1009. */
const MAX_PAYLOAD = 64 * 1024;

/** When a refused inspector may try again: a subscriber leaves when its tab closes. */
const RETRY_AFTER_MS = 5_000;

/** How long an inspector on a node with tokens has to send its token after the upgrade. */
const AUTH_DEADLINE_MS = 5_000;

/** Close codes for an inspector without a valid token: 4000 + the HTTP status it would get. */
export const INSPECT_CLOSE_UNAUTHORIZED = 4401;

/** The first message of an inspector that could not send a header (a browser): its API token. */
const AuthMessageSchema = z.object({ type: z.literal("auth"), token: z.string().max(4096) }).strict();

export interface InspectSocketOptions {
  /** `--max-inspectors`: past it an upgrade gets 503 SHOAL_ERR_OVERLOADED. */
  maxInspectors: number;
  /** `--token-key-file`: the stream wants a token of scope read; open without. */
  tokens?: TokenVerifier | undefined;
  /** Which Host and Origin headers may open the stream (the API's rules). */
  origins?: OriginPolicy | undefined;
}

/**
 * `WS /v1/inspect[?workflow=ID]`: JSON arrays of inspection events for the whole mesh. On a node
 * with API tokens the token comes as `Authorization: Bearer` on the upgrade, or, since browsers
 * cannot set headers on a WebSocket, as the first message `{"type":"auth","token"}` within 5 s;
 * never in the URL. Refusals before the upgrade are HTTP answers with the API's error body; a bad
 * token in the first message closes with 4401 and the reason. The stream is one way after that,
 * so an inspector that sends anything else is closed (1008; over 64 KiB, 1009 before it is read).
 */
export function createInspectSocket(hub: InspectHub, logger: Logger, options: InspectSocketOptions) {
  const log = logger.child({ component: "inspect-ws" });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_PAYLOAD });
  // A handshake ws refuses (no key, wrong version) gets the error body too, not ws's text/html.
  wss.on("wsClientError", (err, socket, req) => {
    const refusal = req.method === "GET" ? new ShoalError("SHOAL_ERR_BAD_REQUEST", `not a WebSocket upgrade: ${err.message}`) : methodNotAllowed(req.method);
    refuse(socket, refusal);
  });
  let subscribers = 0;
  const { tokens, origins } = options;
  return {
    /** Takes the upgrade if it is for `/v1/inspect`. */
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
      const url = new URL(req.url ?? "/", "http://node.invalid");
      if (url.pathname !== INSPECT_PATH) return false;
      socket.on("error", (err) => log.debug({ err }, "inspector socket error"));
      if (req.method !== "GET") {
        refuse(socket, methodNotAllowed(req.method));
        return true;
      }
      const refusal = origins?.refusal(req.headers) ?? tokenInQuery(url);
      if (refusal) {
        refuse(socket, refusal);
        return true;
      }
      // A token sent as a header is checked before the upgrade; a browser's comes as the first message.
      let authorized = tokens === undefined;
      if (tokens && req.headers.authorization !== undefined) {
        try {
          tokens.verify(bearerToken(req.headers.authorization));
          authorized = true;
        } catch (err) {
          refuse(socket, err as ShoalError);
          return true;
        }
      }
      const filter = InspectFilterSchema.safeParse(Object.fromEntries(url.searchParams));
      if (!filter.success) {
        const { message, path } = describeZodError(filter.error);
        refuse(socket, new ShoalError("SHOAL_ERR_BAD_REQUEST", `inspect filter: ${message}`, { path }));
        return true;
      }
      if (subscribers >= options.maxInspectors) {
        const message = `${options.maxInspectors} inspectors are open (--max-inspectors)`;
        refuse(socket, new ShoalError("SHOAL_ERR_OVERLOADED", message, { retryAfterMs: RETRY_AFTER_MS }), 503);
        return true;
      }
      // The slot goes with the socket, whether or not ws completes the handshake.
      subscribers++;
      socket.once("close", () => subscribers--);
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on("error", (err) => log.debug({ err }, "inspector socket error"));
        let unsubscribe: (() => void) | undefined;
        const stream = () => {
          unsubscribe = hub.subscribe(filter.data, (events) => {
            if (ws.bufferedAmount > MAX_BUFFERED) {
              log.warn({ buffered: ws.bufferedAmount }, "inspector is not keeping up; disconnecting it");
              ws.terminate();
              return;
            }
            ws.send(JSON.stringify(events));
          });
        };
        ws.on("close", () => unsubscribe?.());
        if (authorized) stream();
        const deadline = authorized
          ? undefined
          : setTimeout(() => closeUnauthorized(ws, `no API token within ${AUTH_DEADLINE_MS / 1000} s (send {"type":"auth","token":"..."} first)`), AUTH_DEADLINE_MS);
        ws.once("close", () => clearTimeout(deadline));
        let first = true;
        ws.on("message", (data) => {
          const isFirst = first;
          first = false;
          const auth = isFirst ? authMessage(data) : undefined;
          if (!auth) {
            ws.close(1008, "the inspection stream takes no messages but a first {\"type\":\"auth\"}");
            return;
          }
          if (authorized || !tokens) return;
          clearTimeout(deadline);
          try {
            tokens.verify(auth.token);
          } catch (err) {
            closeUnauthorized(ws, (err as ShoalError).message);
            return;
          }
          authorized = true;
          stream();
        });
      });
      return true;
    },
    close(): void {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}

function authMessage(data: unknown): z.infer<typeof AuthMessageSchema> | undefined {
  try {
    const parsed = AuthMessageSchema.safeParse(JSON.parse(String(data)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** A WebSocket close reason is at most 123 bytes. */
function closeUnauthorized(ws: WebSocket, reason: string): void {
  const bytes = Buffer.from(reason);
  ws.close(INSPECT_CLOSE_UNAUTHORIZED, bytes.length <= 123 ? reason : `${bytes.subarray(0, 120).toString("utf8").replace(/\uFFFD+$/, "")}...`);
}

function tokenInQuery(url: URL): ShoalError | undefined {
  if (!url.searchParams.has("token")) return undefined;
  return new ShoalError("SHOAL_ERR_TOKEN_IN_URL", `API tokens never go in a URL: send 'Authorization: Bearer <token>' or, from a browser, the first message {"type":"auth","token":"..."}`);
}

function refuse(socket: Duplex, err: ShoalError, status?: number): void {
  const { status: code, headers, body } = errorReply(err, status);
  refuseUpgrade(socket, code, body.error, headers);
}

const methodNotAllowed = (method: string | undefined) => new ShoalError("SHOAL_ERR_METHOD_NOT_ALLOWED", `${INSPECT_PATH} does not take ${method}; it takes GET`);
