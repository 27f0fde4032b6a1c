import type { ErrorCatalog } from "@shoal/protocol";

/** Codes raised by connections, handshakes and requests between peers. */
export const TransportErrors = {
  SHOAL_ERR_AUTH_FAILED: { status: 401, doc: "the peer did not prove it knows the cluster secret (close code 4001)" },
  SHOAL_ERR_CLUSTER_MISMATCH: { status: 400, doc: "the peer belongs to another cluster (close code 4003)" },
  SHOAL_ERR_HANDSHAKE_FAILED: { status: 400, doc: "the handshake broke off: a bad or unexpected frame, or the socket closed (close code 4000)" },
  SHOAL_ERR_HANDSHAKE_TIMEOUT: { status: 504, doc: "the handshake did not finish in time (close code 4004)" },
  SHOAL_ERR_SELF_CONNECTION: { status: 400, doc: "a node dialed itself, e.g. its own address in --join (close code 4008)" },
  SHOAL_ERR_PEER_ID_IN_USE: { status: 409, doc: "a connection claimed the id of a node that is connected already; the new one is refused, the live one kept (close code 4010)" },
  SHOAL_ERR_CERT_NAME_MISMATCH: { status: 403, doc: "with mutual TLS, a peer claimed a node name its certificate is not for (close code 4011)" },
  SHOAL_ERR_PEER_CERT_REQUIRED: { status: 401, doc: "with mutual TLS, an upgrade on /mesh without a certificate the cluster CA signed for a node; refused before any WebSocket is made" },
  SHOAL_ERR_BAD_TLS: { status: 400, doc: "a CA, certificate or key file cannot be read, parsed or written, a key is readable by others, or a node certificate is not the CA's, not for the node's name, or expired (the message names the file)" },
  SHOAL_ERR_DIAL_FAILED: { status: 502, doc: "no WebSocket could be opened to the address (refused, unreachable, not a Shoal node)" },
  SHOAL_ERR_PEER_CLOSED: { status: 503, doc: "the connection closed while a request was waiting for its answer" },
  SHOAL_ERR_NOT_CONNECTED: { status: 503, doc: "no open connection to that peer" },
  SHOAL_ERR_REQUEST_TIMEOUT: { status: 504, doc: "a request got no answer within its timeout" },
  SHOAL_ERR_BACKPRESSURE: { status: 503, doc: "the peer's send queue is full: it is not reading fast enough" },
  SHOAL_ERR_NO_HANDLER: { status: 404, doc: "the peer has no handler for the request's method" },
  SHOAL_ERR_PEER_FORBIDDEN: { status: 403, doc: "a peer sent a message its method's sender rule does not allow it (a claim, a replica or an actor message for what it does not own, host or supervise), or gossip about another node that changes what only that node says; refused, counted, logged once per peer per minute" },
  SHOAL_ERR_HANDLER_FAILED: { status: 500, doc: "the peer's handler threw an error that was not a ShoalError" },
} as const satisfies ErrorCatalog;

export type TransportErrorCode = keyof typeof TransportErrors;
