import { type Clock, LogLimiter, type Logger, type NodeIdentity, ShoalError } from "@shoal/protocol";
import type { TransportStats } from "./TransportStats.js";

export interface ForbiddenMessagesOptions {
  /** One line per peer per this many milliseconds (a minute); the next says how many were left out. */
  windowMs?: number;
  /** Peers remembered at most; the one heard from longest ago is forgotten first. */
  maxPeers?: number;
  /** The log window's clock; `monotonicNow` by default. */
  now?: Clock;
}

/**
 * Messages refused because their sender may not send them (a rule of the method table, or a
 * gossip record about another node): each is counted, and logged once per peer per minute, so a
 * peer that repeats a forged message in a loop costs one line a minute.
 */
export class ForbiddenMessages {
  private readonly perPeer = new Map<string, LogLimiter>();
  private readonly windowMs: number;
  private readonly maxPeers: number;

  constructor(
    private readonly log: Logger,
    private readonly stats: TransportStats,
    private readonly options: ForbiddenMessagesOptions = {},
  ) {
    this.windowMs = options.windowMs ?? 60_000;
    this.maxPeers = options.maxPeers ?? 1_024;
  }

  /** Counts and logs a refusal; the error to answer the peer with. */
  refuse(peer: NodeIdentity, what: string, reason: string): ShoalError {
    this.stats.forbiddenMessages++;
    const message = `${peer.name} may not send ${what}: ${reason}`;
    this.limiterOf(peer.id).warn({ code: "SHOAL_ERR_PEER_FORBIDDEN", peer: peer.name, peerId: peer.id, what, reason }, "refused a message its sender may not send");
    return new ShoalError("SHOAL_ERR_PEER_FORBIDDEN", message);
  }

  private limiterOf(peerId: string): LogLimiter {
    let limiter = this.perPeer.get(peerId);
    if (limiter) {
      // Most recent last, so the first key is the peer heard from longest ago.
      this.perPeer.delete(peerId);
    } else {
      limiter = new LogLimiter(this.log, { perWindow: 1, windowMs: this.windowMs, ...(this.options.now && { now: this.options.now }) });
      if (this.perPeer.size >= this.maxPeers) this.perPeer.delete(this.perPeer.keys().next().value as string);
    }
    this.perPeer.set(peerId, limiter);
    return limiter;
  }
}
