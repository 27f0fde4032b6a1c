import type { WebSocket } from "ws";

/**
 * Changes the largest message a socket reads. ws fixes `maxPayload` when the socket is made, but
 * a peer that has not proved anything yet should get a small cap (a handshake frame is under
 * 1 KiB) and only a trusted one the full frame limit. ws keeps the limit on its receiver, the
 * same object it sets `_binaryType` on when the socket's `binaryType` changes.
 */
export function setFrameCap(ws: WebSocket, maxBytes: number): void {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (!receiver || typeof receiver._maxPayload !== "number") {
    // Only a ws release that renamed its internals gets here; frameCap.test.ts pins the behaviour.
    throw new Error("ws has no receiver with _maxPayload: the frame cap cannot be raised after the handshake");
  }
  receiver._maxPayload = maxBytes;
}
