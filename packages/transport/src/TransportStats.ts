/** Counters a transport keeps for `/metrics`. Plain numbers: the app turns them into gauges. */
export interface TransportStats {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Frames refused: not MessagePack, wrong schema, too large, or unexpected. */
  badFrames: number;
  /** Frames dropped because a peer's send queue was full. */
  droppedFrames: number;
  /** Dial attempts after the first for the same address. */
  reconnects: number;
  authFailures: number;
  /** Handshakes that failed, for any reason (auth failures included). */
  handshakeFailures: number;
  /** Connections refused before the handshake: too many were still in one. */
  refusedConnections: number;
  /** Requests from peers refused because that peer had too many being answered. */
  overloadedRequests: number;
  /** Requests, casts and gossip records refused because their sender may not send them (SHOAL_ERR_PEER_FORBIDDEN). */
  forbiddenMessages: number;
}

export function createTransportStats(): TransportStats {
  return { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, badFrames: 0, droppedFrames: 0, reconnects: 0, authFailures: 0, handshakeFailures: 0, refusedConnections: 0, overloadedRequests: 0, forbiddenMessages: 0 };
}
