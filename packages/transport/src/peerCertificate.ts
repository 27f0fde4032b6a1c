import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";

/** What mutual TLS needs: the cluster CA and this node's certificate and key (PEM). */
export interface TlsMaterial {
  ca: string | Buffer;
  cert: string | Buffer;
  key: string | Buffer;
}

/**
 * The node name a peer's certificate vouches for: its subject CN, which `shoal cert issue` sets
 * to the node's name (and repeats first in the SAN). Undefined when the socket is not TLS, or the
 * certificate was not signed by the cluster CA (`authorized` is false then).
 */
export function certifiedName(socket: unknown): string | undefined {
  const tls = socket as Partial<TLSSocket> | undefined;
  if (!tls || typeof tls.getPeerCertificate !== "function" || tls.authorized !== true) return undefined;
  const cert = tls.getPeerCertificate();
  const cn = cert?.subject?.CN;
  const name = Array.isArray(cn) ? undefined : cn;
  if (!name) return undefined;
  const sans = (cert.subjectaltname ?? "").split(", ");
  return sans.includes(`DNS:${name}`) ? name : undefined;
}

/** Why an incoming TLS connection has no certificate the cluster CA signed, for the refusal. */
export function uncertifiedReason(req: IncomingMessage): string {
  const tls = req.socket as Partial<TLSSocket>;
  if (typeof tls.getPeerCertificate !== "function") return "the connection is not TLS";
  const cert = tls.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return "no client certificate";
  if (tls.authorized !== true) return `the certificate is not signed by the cluster CA (${tls.authorizationError ?? "unverified"})`;
  return "the certificate names no node (its CN is not among its DNS SANs)";
}
