import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { InspectFilterSchema, type Logger } from "@shoal/protocol";
import { WebSocketServer } from "ws";
import type { InspectHub } from "./InspectHub.js";

export const INSPECT_PATH = "/v1/inspect";

/** A browser that reads slower than this many bytes is cut off rather than buffered forever. */
const MAX_BUFFERED = 8 * 1024 * 1024;

/**
 * `WS /v1/inspect[?workflow=ID][&token=SECRET]`: JSON arrays of inspection events for the whole
 * mesh. Browsers cannot set headers on a WebSocket, so the secret may come as `token`.
 */
export function createInspectSocket(hub: InspectHub, secret: string | undefined, logger: Logger) {
  const log = logger.child({ component: "inspect-ws" });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });
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
      if (!allowed(req, url)) {
        socket.end("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n");
        return true;
      }
      const filter = InspectFilterSchema.safeParse(Object.fromEntries([...url.searchParams].filter(([k]) => k !== "token")));
      if (!filter.success) {
        socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        return true;
      }
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
        // The stream is one way; whatever a browser sends is ignored.
        ws.on("message", () => {});
      });
      return true;
    },
    close(): void {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}
