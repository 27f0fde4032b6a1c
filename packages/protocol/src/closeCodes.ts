/**
 * WebSocket close codes Shoal uses on `/mesh`. 1000-1015 are the standard ones that `ws` sends
 * itself (1009 for a message over `maxPayload`); 4000-4999 are ours.
 */
export const CloseCodes = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  TOO_BIG: 1009,
  HANDSHAKE_FAILED: 4000,
  AUTH_FAILED: 4001,
  PROTOCOL_VERSION: 4002,
  CLUSTER_MISMATCH: 4003,
  HANDSHAKE_TIMEOUT: 4004,
  HEARTBEAT_TIMEOUT: 4005,
  SEND_QUEUE_FULL: 4006,
  SELF_CONNECTION: 4008,
  DUPLICATE: 4009,
  PEER_ID_IN_USE: 4010,
  CERT_NAME_MISMATCH: 4011,
} as const;

export type CloseCode = (typeof CloseCodes)[keyof typeof CloseCodes];
