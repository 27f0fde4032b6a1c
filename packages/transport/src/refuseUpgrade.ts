import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { ErrorBody } from "@shoal/protocol";

/**
 * Answers an HTTP upgrade that will not become a WebSocket with a status and the API's JSON
 * error body, then lets the socket go. Safe on a socket that is already broken.
 */
export function refuseUpgrade(socket: Duplex, status: number, error: ErrorBody, headers: Record<string, string> = {}): void {
  socket.on("error", () => socket.destroy());
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error });
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}`,
    "Connection: close",
    "Content-Type: application/json; charset=utf-8",
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${head.join("\r\n")}\r\n\r\n${body}`);
  // A client that never reads must not keep the socket: give the answer a moment, then drop it.
  setTimeout(() => socket.destroy(), 1_000).unref();
}
