import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { HelloFrame } from "@shoal/protocol";

/** A fresh 32-byte nonce as hex; each side sends one per handshake. */
export function createNonce(): string {
  return randomBytes(32).toString("hex");
}

/** JSON with the keys of every object sorted: the same bytes on both ends, whatever the key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * Proof that a side knows the cluster secret without sending it: HMAC-SHA256 over the prover's
 * role and both hellos whole (version, cluster, the node's id, name, address, capabilities,
 * tools and slots, and both fresh nonces), `proof` left out. So nobody without the secret can
 * change what a node says about itself in its hello, the role keeps one side's proof from being
 * replayed as the other's, and the nonces keep an old handshake from being replayed at all.
 */
export function proveSecret(secret: string, role: "acceptor" | "dialer", hellos: { dialer: HelloFrame; acceptor: HelloFrame }): string {
  const strip = ({ proof: _proof, ...rest }: HelloFrame) => rest;
  return createHmac("sha256", secret)
    .update(`shoal/${role}\n${canonical(strip(hellos.dialer))}\n${canonical(strip(hellos.acceptor))}`)
    .digest("hex");
}

export function proofMatches(expected: string, received: string | undefined): boolean {
  if (received === undefined || received.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(expected, "hex"), Buffer.from(received, "hex"));
}
