import { EventEmitter } from "node:events";
import type { Frame, Logger, Member } from "@shoal/protocol";
import type { DialFailure, PeerConnection, Transport } from "@shoal/transport";
import { FailureDetector } from "./FailureDetector.js";
import { type MemberChange, MembershipTable } from "./MembershipTable.js";

export interface MeshOptions {
  transport: Transport;
  /** Addresses (host:port) to join through; kept dialed for as long as the node runs. */
  seeds: string[];
  /** Gossip round and failure-detection interval. */
  heartbeatMs: number;
  suspectAfterMs: number;
  downAfterMs: number;
  /** How long a down member stays in the table before it is forgotten. */
  downRetentionMs?: number;
  /** Every this many rounds the whole table is gossiped, not only what changed. */
  fullGossipEvery?: number;
  logger: Logger;
}

export interface MeshEvents {
  up: [member: Member];
  suspect: [member: Member];
  down: [member: Member];
  /** Every change of the table, status or otherwise (load, tools), and removals. */
  changed: [change: MemberChange];
}

/** A member as this node sees it. */
export interface MemberView extends Member {
  self: boolean;
  /** Milliseconds since this node last heard from it; undefined for itself or never. */
  lastSeenMs: number | undefined;
}

/**
 * Membership over the transport: joins through seeds, spreads the table by gossip, keeps a
 * connection to every live member (a full mesh), and decides who is up, suspect or down.
 */
export class Mesh extends EventEmitter<MeshEvents> {
  readonly table: MembershipTable;
  private readonly transport: Transport;
  private readonly detector: FailureDetector;
  private readonly log: Logger;
  private readonly downSince = new Map<string, number>();
  private readonly seeds: Set<string>;
  private timer: NodeJS.Timeout | undefined;
  private started = false;

  constructor(private readonly options: MeshOptions) {
    super();
    this.transport = options.transport;
    this.log = options.logger.child({ component: "mesh" });
    this.table = new MembershipTable({ ...this.transport.identity, incarnation: 0, status: "up", running: 0 });
    this.detector = new FailureDetector({
      intervalMs: options.heartbeatMs,
      suspectAfterMs: options.suspectAfterMs,
      downAfterMs: options.downAfterMs,
    });
    this.seeds = new Set(options.seeds.filter((s) => s !== this.transport.identity.address));
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.transport.on("connected", this.onConnected);
    this.transport.on("frame", this.onFrame);
    this.transport.on("dialFailed", this.onDialFailed);
    for (const seed of this.seeds) this.transport.maintain(seed);
    this.timer = setInterval(() => this.round(), this.options.heartbeatMs);
  }

  /** Tells the mesh this node is leaving (down at a new incarnation), then closes every link. */
  async leave(): Promise<void> {
    clearInterval(this.timer);
    const farewell = this.table.leave();
    for (const conn of this.transport.connections()) {
      try {
        conn.send({ t: "gossip", members: [farewell] });
      } catch (err) {
        this.log.debug({ err, peer: conn.peer.name }, "could not say goodbye to a peer");
      }
    }
    this.transport.off("connected", this.onConnected);
    this.transport.off("frame", this.onFrame);
    this.transport.off("dialFailed", this.onDialFailed);
    await this.transport.close();
  }

  get self(): Member {
    return this.table.self;
  }

  member(id: string): Member | undefined {
    return this.table.get(id);
  }

  members(now = Date.now()): MemberView[] {
    return this.table.all().map((m) => {
      const self = m.id === this.table.self.id;
      const heard = self ? undefined : this.lastHeard(m.id);
      return { ...m, self, lastSeenMs: heard === undefined ? undefined : now - heard };
    });
  }

  /** Publishes this node's load: how many of its slots are busy. */
  setRunning(running: number): void {
    this.table.updateSelf({ running });
  }

  /** Publishes how many slots this node offers; 0 while draining keeps new work away. */
  setSlots(slots: number): void {
    this.table.updateSelf({ slots });
  }

  private lastHeard(id: string): number | undefined {
    const conn = this.transport.connection(id);
    const fromDetector = this.detector.lastHeardAt(id);
    if (conn?.isOpen) return Math.max(conn.lastSeenAt, fromDetector ?? 0);
    return fromDetector;
  }

  private round(): void {
    const round = this.table.nextRound();
    const full = round % (this.options.fullGossipEvery ?? 10) === 0;
    this.transport.broadcast({ t: "gossip", members: full ? this.table.all() : this.table.changedSince(3) });
    // Judge silence after the poll phase, so that frames which arrived while this loop was busy
    // are read before anyone is blamed for them.
    setImmediate(() => this.detect());
    this.forgetLongDead();
  }

  private detect(): void {
    const now = Date.now();
    const live = this.table.peers().filter((m) => m.status !== "down");
    for (const m of live) {
      const conn = this.transport.connection(m.id);
      if (conn?.isOpen) this.detector.heard(m.id, conn.lastSeenAt);
    }
    for (const verdict of this.detector.check(live.map((m) => m.id), now)) {
      const change = this.table.mark(verdict.id, verdict.status);
      if (change) this.apply(change, `silent for ${verdict.silentMs} ms`);
    }
  }

  private forgetLongDead(): void {
    const retention = this.options.downRetentionMs ?? 10 * 60_000;
    const now = Date.now();
    for (const [id, since] of this.downSince) {
      if (now - since < retention) continue;
      this.downSince.delete(id);
      const change = this.table.remove(id);
      if (change) this.apply(change, "down for longer than the retention time");
    }
  }

  private readonly onConnected = (conn: PeerConnection): void => {
    const peer = conn.peer;
    this.detector.heard(peer.id);
    if (!this.table.get(peer.id)) {
      const change = this.table.merge({ ...peer, incarnation: 0, status: "up", running: 0 }, peer.id);
      if (change && change !== "refuted") this.apply(change, "connected");
    }
    // The whole table at once: a restarted peer learns we think it is down, and refutes it.
    try {
      conn.send({ t: "gossip", members: this.table.all() });
    } catch (err) {
      this.log.warn({ err, peer: peer.name }, "could not send the membership table to a new peer");
    }
  };

  private readonly onFrame = (frame: Frame, conn: PeerConnection): void => {
    if (frame.t !== "gossip") return;
    this.detector.heard(conn.peer.id);
    for (const record of frame.members) {
      const change = this.table.merge(record, conn.peer.id);
      if (change === "refuted") {
        this.log.warn({ from: conn.peer.name, status: record.status, incarnation: this.table.self.incarnation }, "refuting a report that this node is not up");
        this.transport.broadcast({ t: "gossip", members: [this.table.self] });
      } else if (change) {
        this.apply(change, `gossip from ${conn.peer.name}`);
      }
    }
  };

  private readonly onDialFailed = (failure: DialFailure): void => {
    if (failure.errno !== "ECONNREFUSED") return;
    // Nobody listens at that address any more: the process is gone, no need to wait for silence.
    for (const m of this.table.peers()) {
      if (m.address !== failure.address || m.status === "down") continue;
      if (this.transport.connection(m.id)?.isOpen) continue;
      const change = this.table.mark(m.id, "down");
      if (change) this.apply(change, "connection refused at its address");
    }
  };

  private apply(change: MemberChange, why: string): void {
    const m = change.member;
    if (change.kind !== "updated") {
      const level = change.kind === "down" || change.kind === "suspect" ? "warn" : "info";
      this.log[level]({ member: m.name, memberId: m.id, address: m.address, status: m.status, incarnation: m.incarnation, why }, `member ${change.kind}`);
    }
    switch (change.kind) {
      case "joined":
      case "up":
        this.downSince.delete(m.id);
        this.detector.heard(m.id);
        if (m.address !== this.table.self.address) this.transport.maintain(m.address);
        this.emit("up", m);
        break;
      case "suspect":
        this.emit("suspect", m);
        break;
      case "down":
        this.downSince.set(m.id, Date.now());
        this.detector.forget(m.id);
        this.releaseIfUnused(m.address);
        this.emit("down", m);
        break;
      case "removed":
        this.detector.forget(m.id);
        break;
      case "updated":
        if (m.status !== "down" && change.previous?.address !== m.address) this.transport.maintain(m.address);
        break;
    }
    this.emit("changed", change);
  }

  /** Stops dialing an address unless it is a seed or another live member lives there. */
  private releaseIfUnused(address: string): void {
    if (this.seeds.has(address)) return;
    if (this.table.peers().some((m) => m.address === address && m.status !== "down")) return;
    this.transport.release(address);
  }
}
