import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { InspectFilterSchema, type Logger, ShoalError, describeZodError } from "@shoal/protocol";
import { refuseUpgrade } from "@shoal/transport";
import { WebSocketServer } from "ws";
import { errorReply } from "../http/errorReply.js";
import type { InspectHub } from "./InspectHub.js";

export const INSPECT_PATH = "/v1/inspect";

/** A browser that reads slower than this many bytes is cut off rather than buffered forever. */
const MAX_BUFFERED = 8 * 1024 * 1024;

/** Largest message read from an inspector (which has nothing to say): larger ones close it with 1009. */
const MAX_PAYLOAD = 64 * 1024;

/** When a refused inspector may try again: a subscriber leaves when its tab closes. */
const RETRY_AFTER_MS = 5_000;

export interface InspectSocketOptions {
  /** `--max-inspectors`: past it an upgrade gets 503 SHOAL_ERR_OVERLOADED. */
  maxInspectors: number;
}

/**
 * `WS /v1/inspect[?workflow=ID][&token=SECRET]`: JSON arrays of inspection events for the whole
 * mesh. Browsers cannot set headers on a WebSocket, so the secret may come as `token`. Every
 * refusal is an HTTP answer with the API's error body; the stream is one way, so an inspector
 * that sends anything is closed (1008; over 64 KiB, 1009 before it is read).
 */
export function createInspectSocket(hub: InspectHub, secret: string | undefined, logger: Logger, options: InspectSocketOptions) {
  const log = logger.child({ component: "inspect-ws" });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_PAYLOAD });
  // A handshake ws refuses (no key, wrong version) gets the error body too, not ws's text/html.
  wss.on("wsClientError", (err, socket, req) => {
    const refusal = req.method === "GET" ? new ShoalError("SHOAL_ERR_BAD_REQUEST", `not a WebSocket upgrade: ${err.message}`) : methodNotAllowed(req.method);
    refuse(socket, refusal);
  });
  let subscribers = 0;
  const allowed = (req: IncomingMessage, url: URL) => {
    if (secret === undefined) return true;
    const given = Buffer.from(url.searchParams.get("token") ?? (req.headers.authorization ?? "").replace(/^Bearer /, ""));
    const expected = Buffer.from(secret);
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
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
      if (!allowed(req, url)) {
        refuse(socket, new ShoalError("SHOAL_ERR_UNAUTHORIZED", "the inspection stream needs the cluster secret as ?token= or 'Authorization: Bearer <secret>'"));
        return true;
      }
      const filter = InspectFilterSchema.safeParse(Object.fromEntries([...url.searchParams].filter(([k]) => k !== "token")));
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
        const unsubscribe = hub.subscribe(filter.data, (events) => {
          if (ws.bufferedAmount > MAX_BUFFERED) {
            log.warn({ buffered: ws.bufferedAmount }, "inspector is not keeping up; disconnecting it");
            ws.terminate();
            return;
          }
          ws.send(JSON.stringify(events));
        });
        ws.on("close", unsubscribe);
        ws.on("error", (err) => log.debug({ err }, "inspector socket error"));
        ws.on("message", () => ws.close(1008, "the inspection stream takes no messages"));
      });
      return true;
    },
    close(): void {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}

function refuse(socket: Duplex, err: ShoalError, status?: number): void {
  const { status: code, headers, body } = errorReply(err, status);
  refuseUpgrade(socket, code, body.error, headers);
}

const methodNotAllowed = (method: string | undefined) => new ShoalError("SHOAL_ERR_METHOD_NOT_ALLOWED", `${INSPECT_PATH} does not take ${method}; it takes GET`);
