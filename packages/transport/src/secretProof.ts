import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** A fresh 32-byte nonce as hex; each side sends one per handshake. */
export function createNonce(): string {
  return randomBytes(32).toString("hex");
}

/**
 * Proof that a side knows the cluster secret without sending it: HMAC-SHA256 over both nonces,
 * the prover's role and node id. The role keeps one side's proof from being replayed as the
 * other's; the fresh nonces keep an old handshake from being replayed at all.
 */
export function proveSecret(secret: string, role: "acceptor" | "dialer", ownNonce: string, peerNonce: string, nodeId: string): string {
  return createHmac("sha256", secret).update(`shoal/${role}\n${peerNonce}\n${ownNonce}\n${nodeId}`).digest("hex");
}

export function proofMatches(expected: string, received: string | undefined): boolean {
  if (received === undefined || received.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(expected, "hex"), Buffer.from(received, "hex"));
}
