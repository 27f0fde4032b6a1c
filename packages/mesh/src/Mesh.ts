import { EventEmitter } from "node:events";
import { type Frame, LIMITS, LogLimiter, type Logger, type Member, type NodeIdentity, type ShoalError, monotonicNow } from "@shoal/protocol";
import type { DialFailure, PeerConnection, Transport } from "@shoal/transport";
import { FailureDetector } from "./FailureDetector.js";
import { gossipRefusal } from "./gossipSenders.js";
import { type MemberChange, type MembershipStats, MembershipTable, type MergeVerdict } from "./MembershipTable.js";

/** Records per gossip frame at most: well under the frame schema's 10,000. */
const GOSSIP_RECORDS_PER_FRAME = 1_000;
/**
 * Dials started per turn of the event loop. Opening a socket costs a fraction of a millisecond;
 * a frame that brings a thousand new members must not hold the loop for all of them at once.
 */
const DIALS_PER_TURN = 16;

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
  /** Rows of the membership table at most, this node's own included (`max-members`). */
  maxMembers?: number;
  /**
   * This node's incarnation at start: one above the last life's, which the caller keeps (the
   * data dir). 0 for a node that never ran; peers would otherwise keep a restarted node down
   * until they forget it, since a node never takes its incarnation from what peers say.
   */
  incarnation?: number;
  /**
   * Called each time this node raises its incarnation (a refutation, leaving), before the raised
   * record goes out, so the caller can store it for the next life. A throw is logged.
   */
  onIncarnation?: (incarnation: number) => void;
  logger: Logger;
}

export interface MeshEvents {
  up: [member: Member];
  suspect: [member: Member];
  down: [member: Member];
  /** Every change of the table, status or otherwise (load, tools), and removals. */
  changed: [change: MemberChange];
  /**
   * The changes of one turn of the event loop (a gossip frame, a burst of refused dials, a
   * detector pass) at once, right after it (setImmediate), their `up`/`down`/`changed` events
   * long sent: for listeners whose work is per table, not per member, so that a frame of n
   * records, or n members found gone, cost them once, not n times.
   */
  changes: [changes: MemberChange[]];
}

/** What the mesh refused or ignored, for `/metrics`. */
export interface MeshStats extends MembershipStats {
  /** Reports that this node is suspect or down it could not refute: its incarnation is at the bound. */
  exhausted: number;
  /** Reports that a member is down which this node's own live link to it contradicted, ignored. */
  contradicted: number;
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
  private readonly seeds: Set<string>;
  private readonly refusals: Record<"full" | "forged" | "exhausted", LogLimiter>;
  private exhausted = 0;
  /** Reports of members down that this node's own link to them contradicted (see `contradicted`). */
  private contradictions = 0;
  private batch: MemberChange[] = [];
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private leaving = false;
  /** Addresses to dial, started a few a turn. */
  private readonly toDial = new Set<string>();

  constructor(private readonly options: MeshOptions) {
    super();
    this.transport = options.transport;
    this.log = options.logger.child({ component: "mesh" });
    this.refusals = { full: new LogLimiter(this.log), forged: new LogLimiter(this.log), exhausted: new LogLimiter(this.log) };
    this.table = new MembershipTable(
      { ...this.transport.identity, incarnation: options.incarnation ?? 0, status: "up", running: 0 },
      { maxMembers: options.maxMembers ?? LIMITS["max-members"].default },
    );
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
    this.log.info({ incarnation: this.table.self.incarnation, maxMembers: this.options.maxMembers ?? LIMITS["max-members"].default }, "mesh started");
  }

  /** Tells the mesh this node is leaving (down at a new incarnation), then closes every link. */
  async leave(): Promise<void> {
    clearInterval(this.timer);
    this.leaving = true;
    this.toDial.clear();
    const before = this.table.self.incarnation;
    const farewell = this.table.leave();
    if (farewell.incarnation !== before) this.raised();
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

  get stats(): MeshStats {
    return { ...this.table.stats, exhausted: this.exhausted, contradicted: this.contradictions };
  }

  member(id: string): Member | undefined {
    return this.table.get(id);
  }

  members(now = monotonicNow()): MemberView[] {
    return this.table.all().map((m) => {
      const self = m.id === this.table.self.id;
      const heard = self ? undefined : this.lastHeard(m.id);
      return { ...m, self, lastSeenMs: heard === undefined ? undefined : Math.round(now - heard) };
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
    this.broadcast(full ? this.table.all() : this.table.changedSince(3));
    // Judge silence after the poll phase, so that frames which arrived while this loop was busy
    // are read before anyone is blamed for them.
    setImmediate(() => this.detect());
    this.forgetLongDead();
  }

  private broadcast(members: Member[]): void {
    for (const frame of this.gossipFrames(members)) this.transport.broadcast(frame);
  }

  /** Records cut into frames that stay under the schema's count and the transport's size limit. */
  private gossipFrames(members: Member[]): Frame[] {
    const budget = this.transport.codec.maxFrameBytes / 2;
    const frames: Frame[] = [];
    let chunk: Member[] = [];
    let bytes = 0;
    for (const m of members) {
      const size = estimatedBytes(m);
      if (chunk.length > 0 && (chunk.length >= GOSSIP_RECORDS_PER_FRAME || bytes + size > budget)) {
        frames.push({ t: "gossip", members: chunk });
        chunk = [];
        bytes = 0;
      }
      chunk.push(m);
      bytes += size;
    }
    if (chunk.length > 0) frames.push({ t: "gossip", members: chunk });
    return frames;
  }

  /** Silence is measured on the monotonic clock, as the transport's `lastSeenAt` is: a wall-clock step blames no one. */
  private detect(): void {
    const now = monotonicNow();
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
    for (const change of this.table.forgetDownBefore(monotonicNow() - retention)) this.apply(change, "down for longer than the retention time");
  }

  private readonly onConnected = (conn: PeerConnection): void => {
    const peer = conn.peer;
    this.detector.heard(peer.id);
    if (!this.table.get(peer.id)) {
      const record: Member = { ...peer, incarnation: 0, status: "up", running: 0 };
      const outcome = this.table.merge(record, peer.id);
      if (typeof outcome === "object") this.apply(outcome, "connected");
      else if (outcome === "full") this.refused(record, peer.name);
    }
    // The whole table at once: a restarted peer learns we think it is down, and refutes it.
    try {
      for (const frame of this.gossipFrames(this.table.all())) conn.send(frame);
    } catch (err) {
      this.log.warn({ err, peer: peer.name }, "could not send the membership table to a new peer");
    }
  };

  private readonly onFrame = (frame: Frame, conn: PeerConnection): void => {
    if (frame.t !== "gossip") return;
    const from = conn.peer;
    this.detector.heard(from.id);
    let refuted = false;
    let forbidden: ShoalError | undefined;
    for (const record of frame.members) {
      const reason = gossipRefusal(record, from, this.table.get(record.id), this.helloOf(record.id));
      if (reason !== undefined) {
        forbidden = this.transport.forbid(from, "gossip", reason);
        continue;
      }
      if (this.contradicted(record)) {
        this.contradictions++;
        continue;
      }
      const outcome = this.table.merge(record, from.id);
      if (outcome === undefined) continue;
      if (typeof outcome === "object") this.apply(outcome, `gossip from ${from.name}`);
      else if (outcome === "refuted") {
        this.log.warn({ from: from.name, status: record.status, incarnation: this.table.self.incarnation }, "refuting a report that this node is not up");
        refuted = true;
      } else this.ignored(outcome, record, from.name);
    }
    if (refuted) {
      this.raised();
      this.broadcast([this.table.self]);
    }
    // One error frame for the whole frame, however many of its records were refused.
    if (forbidden && conn.isOpen) conn.send({ t: "error", error: forbidden.toBody() }, { droppable: true });
  };

  /**
   * A report that another member is down, at the incarnation this node knows, while this node has
   * had an open link to it for longer than `downAfterMs` and heard from it lately: what this node
   * sees itself wins over a rumor. A node back from the other side of a partition gossips the
   * members it saw down meanwhile; taken, that closes live links and stops the actors their nodes
   * supervise. If the member is really gone, this node's own detector says so soon enough.
   */
  private contradicted(record: Member): boolean {
    if (record.status !== "down" || record.id === this.table.self.id) return false;
    // At a higher incarnation it comes from the member itself (only it raises its own): it left.
    const known = this.table.get(record.id);
    if (!known || record.incarnation > known.incarnation) return false;
    const conn = this.transport.connection(record.id);
    if (conn?.isOpen !== true) return false;
    const now = monotonicNow();
    // A link younger than the silence that makes a member down may be to a new life of it: the
    // report can be about the process that died before (a quick restart), whose actors are gone.
    if (now - conn.openedAt < this.options.downAfterMs) return false;
    const heard = this.lastHeard(record.id);
    return heard !== undefined && now - heard < this.options.suspectAfterMs;
  }

  /** What a node said of itself in its handshake with this one, if there is a link to it. */
  private helloOf(id: string): NodeIdentity | undefined {
    return id === this.table.self.id ? this.transport.identity : this.transport.connection(id)?.peer;
  }

  private ignored(verdict: Exclude<MergeVerdict, "refuted">, record: Member, from: string): void {
    const self = this.table.self;
    switch (verdict) {
      case "full":
        this.refused(record, from);
        break;
      case "forged":
        this.refusals.forged.warn(
          { code: "SHOAL_ERR_FALSE_INCARNATION", from, status: record.status, incarnation: record.incarnation, own: self.incarnation },
          "ignored a record of this node at an incarnation it never had",
        );
        break;
      case "exhausted":
        this.exhausted++;
        this.refusals.exhausted.warn(
          { code: "SHOAL_ERR_INCARNATION_EXHAUSTED", from, status: record.status, incarnation: self.incarnation },
          "cannot refute a report that this node is not up: its incarnation is at the bound",
        );
        break;
      case "unverified": {
        // Maybe a newer life of a member we think is down: ask it itself, at the address we know.
        const known = this.table.get(record.id);
        if (known?.status === "down") this.dial(known.address);
        break;
      }
    }
  }

  private refused(record: Member, from: string): void {
    this.refusals.full.warn(
      { code: "SHOAL_ERR_TABLE_FULL", from, member: record.name, memberId: record.id, maxMembers: this.options.maxMembers ?? LIMITS["max-members"].default },
      "refused a new member: the membership table is full",
    );
  }

  /** Hands a raised incarnation to the caller to keep, before anyone hears of it. */
  private raised(): void {
    try {
      this.options.onIncarnation?.(this.table.self.incarnation);
    } catch (err) {
      this.log.error({ err, incarnation: this.table.self.incarnation }, "could not store the raised incarnation: a restart may come back below it");
    }
  }

  private readonly onDialFailed = (failure: DialFailure): void => {
    const atAddress = this.table.at(failure.address);
    if (failure.errno === "ECONNREFUSED") {
      // Nobody listens at that address any more: the process is gone, no need to wait for silence.
      for (const m of atAddress) {
        if (m.status === "down" || this.transport.connection(m.id)?.isOpen) continue;
        const change = this.table.mark(m.id, "down");
        if (change) this.apply(change, "connection refused at its address");
      }
    }
    // A hint dial to a member that is down found nobody: stop.
    if (atAddress.length > 0) this.releaseIfUnused(failure.address);
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
        this.detector.heard(m.id);
        if (m.address !== this.table.self.address) this.dial(m.address);
        this.emit("up", m);
        break;
      case "suspect":
        this.emit("suspect", m);
        break;
      case "down":
        this.detector.forget(m.id);
        this.releaseIfUnused(m.address);
        this.emit("down", m);
        break;
      case "removed":
        this.detector.forget(m.id);
        break;
      case "updated":
        if (m.status !== "down" && change.previous?.address !== m.address) this.dial(m.address);
        break;
    }
    this.emit("changed", change);
    this.batch.push(change);
    if (this.batch.length === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const changes = this.batch;
    this.batch = [];
    this.emit("changes", changes);
  }

  /** Keeps `address` dialed (the transport's `maintain`), starting a few such dials a turn. */
  private dial(address: string): void {
    if (this.leaving || this.transport.isMaintained(address)) return;
    this.toDial.add(address);
    if (this.toDial.size === 1) setImmediate(this.dialSome);
  }

  private readonly dialSome = (): void => {
    let started = 0;
    for (const address of this.toDial) {
      if (started++ === DIALS_PER_TURN) break;
      this.toDial.delete(address);
      this.transport.maintain(address);
    }
    if (this.toDial.size > 0) setImmediate(this.dialSome);
  };

  /** Stops dialing an address unless it is a seed or another live member lives there. */
  private releaseIfUnused(address: string): void {
    if (this.seeds.has(address)) return;
    if (this.table.at(address).some((m) => m.status !== "down")) return;
    this.toDial.delete(address);
    this.transport.release(address);
  }
}

/** About the bytes of a record in MessagePack, from above: keys and numbers, and every string at 3 bytes a character. */
function estimatedBytes(m: Member): number {
  let n = 128 + 3 * (m.id.length + m.name.length + m.address.length);
  for (const t of m.tools) n += 3 + t.length;
  for (const c of m.capabilities) n += 3 + c.length;
  return n;
}
