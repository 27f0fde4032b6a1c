import { type LookupAddress, promises as dns } from "node:dns";
import { type LookupFunction, isIP } from "node:net";
import { type EgressRefusal, type EgressRules, ShoalError, egressRules, isIpAddress } from "@shoal/protocol";
import { Agent, type Response, fetch } from "undici";

/** Every address a host name has; `dns.lookup` by default (tests give names of their own). */
export type EgressLookup = (hostname: string) => Promise<LookupAddress[]>;

export interface EgressSettings {
  /** `egress-allow`: classes (loopback, link-local, metadata, ...), addresses and CIDRs reachable besides the LAN and the internet. */
  allow?: readonly string[] | undefined;
  /** `egress-deny`: classes (private too), addresses and CIDRs refused over everything else. */
  deny?: readonly string[] | undefined;
  lookup?: EgressLookup | undefined;
  /** Redirects followed, each hop checked like the first; 5 by default, 0 to follow none. */
  maxRedirects?: number | undefined;
}

/** What one request through the guard says; the body is text so it can be sent again on a 307/308. */
export interface EgressRequest {
  method: string;
  headers: Record<string, string>;
  body?: string | undefined;
  signal?: AbortSignal | undefined;
  /** `manual`: a redirect is answered as it is, not followed (webhooks); `follow` by default. */
  redirect?: "follow" | "manual" | undefined;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Dropped when a redirect leads to another origin, as fetch does: they were meant for the first one. */
const CREDENTIAL_HEADERS = new Set(["authorization", "cookie", "proxy-authorization"]);
const BODY_HEADERS = new Set(["content-type", "content-length", "content-encoding", "content-language", "content-location"]);

const withoutHeaders = (headers: Record<string, string>, drop: Set<string>) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !drop.has(name.toLowerCase())));

function refused(host: string, refusal: EgressRefusal): ShoalError {
  const where = refusal.address === host ? host : `${host} (${refusal.address})`;
  return new ShoalError("SHOAL_ERR_EGRESS_DENIED", `refused to connect to ${where}: ${refusal.reason}; the node's egress rules let it through with ${refusal.allowWith}`);
}

/** The refusal an Agent's lookup raised, wherever fetch wrapped it. */
function refusalIn(err: unknown): ShoalError | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (e instanceof ShoalError) return e;
  return undefined;
}

/**
 * Outgoing HTTP for callers' requests (`http_request`, webhooks) held to the node's egress
 * rules. A host name is resolved, every address it has is checked, and the connection is made
 * to those very addresses (the check is the Agent's DNS lookup), so a name that changes its
 * answer between check and connect (DNS rebinding) cannot get through; an address literal is
 * checked before anything is sent. Redirects are followed by hand, each hop checked again.
 * Connections are kept alive per origin, each made to a checked address.
 */
export class EgressGuard {
  private readonly rules: EgressRules;
  private readonly resolve: EgressLookup;
  private readonly maxRedirects: number;
  private readonly dispatcher: Agent;

  constructor(
    private readonly settings: EgressSettings = {},
    /** A host connected to unchecked (see `trusting`). */
    private readonly trusted?: string,
  ) {
    this.rules = egressRules(settings.allow, settings.deny);
    this.resolve = settings.lookup ?? ((hostname) => dns.lookup(hostname, { all: true }));
    this.maxRedirects = settings.maxRedirects ?? 5;
    this.dispatcher = new Agent({ connect: { lookup: this.connectLookup } });
  }

  /**
   * The same rules, except that `host` is reached whatever its address: for a destination the
   * operator configured (`llm-url`, often a model server on the same box), never one a caller
   * gave. Redirects away from it are checked as usual.
   */
  trusting(host: string): EgressGuard {
    return new EgressGuard(this.settings, host.toLowerCase());
  }

  /**
   * Sends `request` to `url`, following redirects unless it says `manual` (up to
   * `maxRedirects`; a 303, or a 301/302 after a POST, turns into a GET without the body, and
   * credentials are not carried to another origin). SHOAL_ERR_EGRESS_DENIED names `what`, the host, its address and the setting that
   * would allow it; too many redirects or one to a scheme other than http(s) are
   * SHOAL_ERR_HTTP_FAILED; what fetch throws (unreachable, aborted) is thrown as it is.
   */
  async fetch(url: string, request: EgressRequest, what: string): Promise<Response> {
    let target = new URL(url);
    let { method, headers, body } = request;
    for (let hop = 0; ; hop++) {
      if (target.protocol !== "http:" && target.protocol !== "https:") {
        throw new ShoalError("SHOAL_ERR_HTTP_FAILED", `${what}: redirected to ${target.href.slice(0, 200)}, which is not http(s)`);
      }
      const literal = this.checkLiteral(target.hostname);
      if (literal) throw new ShoalError(literal.code, `${what}: ${literal.message}`);
      let res: Response;
      try {
        res = await fetch(target, { method, headers, body: body ?? null, signal: request.signal ?? null, redirect: "manual", dispatcher: this.dispatcher });
      } catch (err) {
        const refusal = refusalIn(err);
        if (refusal) throw new ShoalError(refusal.code, `${what}: ${refusal.message}`);
        throw err;
      }
      const location = REDIRECTS.has(res.status) && request.redirect !== "manual" ? res.headers.get("location") : null;
      if (location === null) return res;
      await res.body?.cancel().catch(() => {});
      if (hop >= this.maxRedirects) throw new ShoalError("SHOAL_ERR_HTTP_FAILED", `${what}: more than ${this.maxRedirects} redirects (the last to ${location.slice(0, 200)})`);
      let next: URL;
      try {
        next = new URL(location, target);
      } catch {
        throw new ShoalError("SHOAL_ERR_HTTP_FAILED", `${what}: redirected to ${location.slice(0, 200)}, which is not a URL`);
      }
      if (res.status === 303 ? method !== "HEAD" : res.status <= 302 && method === "POST") {
        method = "GET";
        body = undefined;
        headers = withoutHeaders(headers, BODY_HEADERS);
      }
      if (next.origin !== target.origin) headers = withoutHeaders(headers, CREDENTIAL_HEADERS);
      target = next;
    }
  }

  /** An address literal is connected to without a lookup, so it is checked here; a host name is left to the lookup. */
  private checkLiteral(hostname: string): ShoalError | undefined {
    if (hostname === this.trusted) return undefined;
    const bare = hostname.replace(/^\[(.*)\]$/, "$1");
    if (isIP(bare) === 0 && !isIpAddress(bare)) return undefined;
    const refusal = this.rules.checkAddress(bare);
    return refusal && refused(bare, refusal);
  }

  /** Every address of `hostname`, each allowed; refused as a whole if any one is not. */
  private async checkedAddresses(hostname: string): Promise<LookupAddress[]> {
    const trusted = hostname.toLowerCase() === this.trusted;
    const named = trusted ? undefined : this.rules.checkName(hostname);
    if (named) throw refused(hostname, named);
    const addresses = await this.resolve(hostname);
    for (const { address } of trusted ? [] : addresses) {
      const refusal = this.rules.checkAddress(address);
      if (refusal) throw refused(hostname, refusal);
    }
    return addresses;
  }

  private readonly connectLookup: LookupFunction = (hostname, options, callback) => {
    const family = options.family === 4 || options.family === "IPv4" ? 4 : options.family === 6 || options.family === "IPv6" ? 6 : 0;
    this.checkedAddresses(hostname).then(
      (all) => {
        const fitting = family === 0 ? all : all.filter((a) => a.family === family);
        const [first] = fitting;
        if (first === undefined) {
          callback(Object.assign(new Error(`${hostname} has no ${family === 0 ? "" : `IPv${family} `}address`), { code: "ENOTFOUND" }), "");
        } else if (options.all) callback(null, fitting);
        else callback(null, first.address, first.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, ""),
    );
  };
}
