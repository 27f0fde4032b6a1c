import type { IncomingHttpHeaders } from "node:http";
import { networkInterfaces } from "node:os";
import { ShoalError } from "@shoal/protocol";
import { isLoopback } from "../security.js";

export interface OriginPolicyOptions {
  /** The names and addresses this node is reached at: its name, host, advertised host, certificate SANs. */
  names: string[];
  /** `--allow-host`: more Host values, e.g. the name a reverse proxy or port forward uses. */
  allowHost: string[];
  /** `--allow-origin`: browser origins (`https://ops.example:8443`) that may call the API. */
  allowOrigin: string[];
  /** `https` when the API is served over TLS: same-origin requests come from that scheme. */
  scheme: "http" | "https";
}

/** Methods and headers a cross-origin caller named by `--allow-origin` may use. */
const CORS_METHODS = "GET, POST, DELETE";
const CORS_HEADERS = "authorization, content-type";

/**
 * Which browsers may talk to this node. A hostile web page reaches a node two ways: DNS
 * rebinding (its own name, now resolving to the node: the Host header gives it away) and
 * cross-site requests or WebSocket upgrades (the Origin header gives those away). Both are
 * refused unless the operator names the host or origin. Callers that are not browsers send no
 * Origin and the node's own name as Host, so the CLI, peers and scripts are not affected.
 */
export class OriginPolicy {
  private readonly hosts: Set<string>;
  private readonly origins: Set<string>;

  constructor(private readonly options: OriginPolicyOptions) {
    const wildcard = options.names.some((n) => n === "0.0.0.0" || n === "::");
    const interfaces = wildcard ? Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)) : [];
    const loopback = options.names.some(isLoopback) ? ["localhost", "127.0.0.1", "::1"] : [];
    this.hosts = new Set([...options.names, ...interfaces, ...loopback, ...options.allowHost].map(normalizeHost));
    this.origins = new Set(options.allowOrigin.map((o) => o.replace(/\/+$/, "").toLowerCase()));
  }

  /** Why a request (or upgrade) with these headers is refused, or undefined when it may go on. */
  refusal(headers: IncomingHttpHeaders): ShoalError | undefined {
    const host = headers.host;
    if (!host) return new ShoalError("SHOAL_ERR_BAD_HOST", "the request has no Host header");
    const name = hostnameOf(host);
    if (!this.hosts.has(name)) {
      return new ShoalError("SHOAL_ERR_BAD_HOST", `Host ${clip(host)} does not name this node; give --allow-host ${clip(name)} if it is how the node is reached`);
    }
    const origin = headers.origin;
    if (origin === undefined || this.sameOrigin(origin, host) || this.origins.has(origin.toLowerCase())) return undefined;
    return new ShoalError("SHOAL_ERR_BAD_ORIGIN", `requests from the web page at ${clip(origin)} are refused; give --allow-origin ${clip(origin)} to allow them`);
  }

  /** The CORS headers for an allowed cross-origin caller; none for the others. */
  corsHeaders(headers: IncomingHttpHeaders): Record<string, string> {
    const origin = headers.origin;
    if (origin === undefined || !this.origins.has(origin.toLowerCase())) return {};
    return {
      "access-control-allow-origin": origin,
      "access-control-allow-methods": CORS_METHODS,
      "access-control-allow-headers": CORS_HEADERS,
      "access-control-max-age": "600",
      vary: "Origin",
    };
  }

  private sameOrigin(origin: string, host: string): boolean {
    return origin.toLowerCase() === `${this.options.scheme}://${host.toLowerCase()}`;
  }
}

/** `Host` without its port, lower case, IPv6 without brackets. */
function hostnameOf(host: string): string {
  const trimmed = host.trim().toLowerCase();
  if (trimmed.startsWith("[")) return trimmed.slice(1, trimmed.indexOf("]") >>> 0);
  const colon = trimmed.lastIndexOf(":");
  return colon > 0 && trimmed.indexOf(":") === colon ? trimmed.slice(0, colon) : trimmed;
}

function normalizeHost(name: string): string {
  const lower = name.trim().toLowerCase();
  return lower.startsWith("[") ? lower.slice(1, -1) : lower;
}

const clip = (text: string) => (text.length > 200 ? `${text.slice(0, 200)}...` : text);
