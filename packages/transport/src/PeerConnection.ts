import {
  type Codec,
  CloseCodes,
  type ErrorBody,
  type Frame,
  LogLimiter,
  type Logger,
  type NodeIdentity,
  ShoalError,
  errorBodyOf,
  isShoalError,
  monotonicNow,
  schemaErrorOf,
} from "@shoal/protocol";
import type { WebSocket } from "ws";
import { SendQueue, type SendQueueOptions } from "./SendQueue.js";
import type { TransportStats } from "./TransportStats.js";

export type Direction = "in" | "out";

export interface PeerConnectionHooks {
  /** Frames that are not the connection's own business (gossip and whatever layers above add). */
  frame(conn: PeerConnection, frame: Frame): void;
  /** Answers a request; a thrown ShoalError goes back to the caller as it is. */
  request(conn: PeerConnection, method: string, body: unknown): Promise<unknown>;
  /** A one-way message; nothing is answered. */
  cast(conn: PeerConnection, method: string, body: unknown): void;
  closed(conn: PeerConnection, code: number, reason: string): void;
}

export interface PeerConnectionOptions extends SendQueueOptions {
  /** Interval of ping frames; 0 turns them off. */
  heartbeatMs: number;
  /** With no frame from the peer for this long, the connection is closed (4005): a hung peer. */
  deadAfterMs: number;
  /** A peer whose send queue stays full this long is disconnected (4006). */
  stallTimeoutMs?: number;
  /** Default timeout of `request`. */
  requestTimeoutMs?: number;
  /** Requests from the peer being answered at once; past it they are refused with SHOAL_ERR_OVERLOADED. */
  maxPeerRequests?: number;
}

interface Pending {
  resolve(body: unknown): void;
  reject(err: ShoalError): void;
  method: string;
  timeoutMs: number;
  deadline: number;
}

/**
 * Request timeouts are checked by one sweep per connection instead of a timer per request, which
 * costs a pipelined link a timer setup and teardown per message; a timeout fires up to this late.
 */
const SWEEP_MS = 20;

/**
 * One authenticated WebSocket to one peer, after the handshake: framing, heartbeats,
 * request/response with correlation ids, and a bounded send queue.
 */
export class PeerConnection {
  readonly peer: NodeIdentity;
  readonly direction: Direction;
  /** When the connection opened, on the monotonic clock (`monotonicNow`), as every time here. */
  readonly openedAt = monotonicNow();
  /** Last time any message arrived from the peer. */
  lastSeenAt = monotonicNow();
  /** Round trip of the last ping, in ms. */
  rttMs: number | undefined;
  private readonly queue: SendQueue;
  private readonly pending = new Map<number, Pending>();
  private nextRequestId = 1;
  private heartbeat: NodeJS.Timeout | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;
  /** Requests from the peer whose answer is not sent yet. */
  private answering = 0;
  private readonly log: Logger;
  /** What the peer did wrong: a few lines per window, however much garbage it sends. */
  private readonly complaints: LogLimiter;

  constructor(
    private readonly ws: WebSocket,
    private readonly codec: Codec,
    init: { peer: NodeIdentity; direction: Direction; logger: Logger; stats: TransportStats; hooks: PeerConnectionHooks },
    private readonly options: PeerConnectionOptions,
  ) {
    this.peer = init.peer;
    this.direction = init.direction;
    this.log = init.logger.child({ peer: init.peer.name, peerId: init.peer.id, direction: init.direction });
    this.complaints = new LogLimiter(this.log);
    this.stats = init.stats;
    this.hooks = init.hooks;
    this.queue = new SendQueue(
      {
        bufferedAmount: () => ws.bufferedAmount,
        write: (bytes, written) => ws.send(bytes, { binary: true }, written),
      },
      options,
    );
    ws.on("message", (data, isBinary) => this.receive(data as Buffer, isBinary));
    ws.on("close", (code, reason) => this.onClose(code, reason.toString()));
    ws.on("error", (err) => this.onSocketError(err));
    if (options.heartbeatMs > 0) {
      this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs);
      this.heartbeat.unref();
    }
  }

  private readonly stats: TransportStats;
  private readonly hooks: PeerConnectionHooks;

  get isOpen(): boolean {
    return !this.closed && this.ws.readyState === this.ws.OPEN;
  }

  get queuedBytes(): number {
    return this.queue.queuedBytes;
  }

  get bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  /**
   * Sends a frame. `droppable` frames (periodic ones) are dropped when the queue is full; others
   * throw SHOAL_ERR_BACKPRESSURE so the caller knows at once.
   */
  send(frame: Frame, options: { droppable?: boolean } = {}): void {
    if (!this.isOpen) throw new ShoalError("SHOAL_ERR_NOT_CONNECTED", `connection to ${this.peer.name} is closed`);
    this.enqueue(this.codec.encode(frame), options.droppable ?? false);
  }

  private enqueue(bytes: Uint8Array, droppable: boolean): void {
    let outcome: ReturnType<SendQueue["push"]>;
    try {
      outcome = this.queue.push(bytes, droppable);
    } catch (err) {
      this.checkStall();
      throw err;
    }
    if (outcome === "dropped") {
      this.stats.droppedFrames++;
      this.checkStall();
      return;
    }
    this.stats.framesOut++;
    this.stats.bytesOut += bytes.length;
  }

  /** Sends a request and resolves with the peer's answer, or rejects with a ShoalError. */
  request(method: string, body: unknown, options: { timeoutMs?: number } = {}): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ?? 10_000;
    const id = this.nextRequestId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method, timeoutMs, deadline: monotonicNow() + timeoutMs });
      this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS);
      try {
        this.send({ t: "req", id, method, body });
      } catch (err) {
        this.pending.delete(id);
        reject(err);
      }
    });
  }

  /** Fails requests past their deadline; stops itself when none is waiting. */
  private sweep(): void {
    const now = monotonicNow();
    for (const [id, p] of this.pending) {
      if (p.deadline > now) continue;
      this.pending.delete(id);
      p.reject(new ShoalError("SHOAL_ERR_REQUEST_TIMEOUT", `${p.method} to ${this.peer.name} got no answer within ${p.timeoutMs} ms`));
    }
    if (this.pending.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /**
   * Sends a close frame and resolves once the socket is gone. A peer that does not answer the
   * close within `graceMs` has its socket destroyed.
   */
  close(code: number = CloseCodes.NORMAL, reason = "", graceMs = 2_000): Promise<void> {
    const gone = new Promise<void>((resolve) => {
      if (this.ws.readyState === this.ws.CLOSED) return resolve();
      const timer = setTimeout(() => this.ws.terminate(), graceMs);
      timer.unref();
      this.ws.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, reason);
    this.onClose(code, reason);
    return gone;
  }

  private beat(): void {
    const now = monotonicNow();
    if (now - this.lastSeenAt > this.options.deadAfterMs) {
      this.log.warn({ silentMs: now - this.lastSeenAt }, "peer stopped answering; closing the connection");
      void this.close(CloseCodes.HEARTBEAT_TIMEOUT, "heartbeat timeout", 0); // it would not read a close frame either
      return;
    }
    if (this.isOpen) this.send({ t: "ping", ts: now }, { droppable: true });
  }

  private checkStall(): void {
    const limit = this.options.stallTimeoutMs ?? 10_000;
    if (this.queue.fullForMs() > limit) {
      this.log.warn({ queuedBytes: this.queue.queuedBytes }, "peer has not read for too long; closing the connection");
      void this.close(CloseCodes.SEND_QUEUE_FULL, "send queue full", 0);
    }
  }

  /** Handles frames that arrived with the end of the handshake, before this object existed. */
  deliverEarly(frames: Frame[]): void {
    for (const frame of frames) this.dispatch(frame);
  }

  private receive(data: Buffer, isBinary: boolean): void {
    this.lastSeenAt = monotonicNow();
    this.stats.bytesIn += data.length;
    let frame: Frame;
    try {
      if (!isBinary) throw new ShoalError("SHOAL_ERR_BAD_FRAME", "text message on /mesh; frames are binary MessagePack");
      frame = this.codec.decode(data);
    } catch (err) {
      this.refuse(err);
      return;
    }
    try {
      this.dispatch(frame);
    } catch (err) {
      // A bug above the transport, set off by what a peer sent: it must not end the process
      // (this runs inside ws's message event). Logged, a few per window.
      this.complaints.warn({ err, frame: frame.t }, "handling a frame from peer failed");
    }
  }

  private dispatch(frame: Frame): void {
    this.stats.framesIn++;
    switch (frame.t) {
      case "ping":
        // Frames can still arrive while our close is under way; a pong then has nowhere to go.
        if (this.isOpen) this.send({ t: "pong", ts: frame.ts }, { droppable: true });
        return;
      case "pong":
        // `ts` is our own clock's, echoed back: a peer's clock never enters it.
        this.rttMs = monotonicNow() - frame.ts;
        return;
      case "req":
        void this.answer(frame.id, frame.method, frame.body);
        return;
      case "res":
        this.settle(frame.id, frame.body, frame.error);
        return;
      case "cast":
        this.hooks.cast(this, frame.method, frame.body);
        return;
      case "error":
        this.complaints.warn({ error: frame.error }, "peer refused a frame we sent");
        return;
      case "hello":
      case "auth":
      case "ready":
        this.refuse(new ShoalError("SHOAL_ERR_BAD_FRAME", `unexpected ${frame.t} frame after the handshake`));
        return;
      default:
        this.hooks.frame(this, frame);
    }
  }

  /** Answers a frame we cannot use with an error frame; the connection stays open. */
  private refuse(err: unknown): void {
    this.stats.badFrames++;
    const body = errorBodyOf(isShoalError(err) ? err : { message: String(err) }, "SHOAL_ERR_BAD_FRAME");
    this.complaints.warn({ code: body.code, err: body.message }, "refused a frame from peer");
    if (this.isOpen) this.send({ t: "error", error: body }, { droppable: true });
  }

  private async answer(id: number, method: string, body: unknown): Promise<void> {
    const max = this.options.maxPeerRequests ?? Number.POSITIVE_INFINITY;
    if (this.answering >= max) {
      this.stats.overloadedRequests++;
      this.complaints.warn({ method, answering: this.answering }, "refused a request: the peer has too many waiting for an answer");
      const error = { code: "SHOAL_ERR_OVERLOADED", message: `${this.answering} requests from this node are being answered already (--max-peer-requests)` };
      if (this.isOpen) this.send({ t: "res", id, error }, { droppable: true });
      return;
    }
    this.answering++;
    let frame: Frame;
    try {
      frame = { t: "res", id, body: await this.hooks.request(this, method, body) };
    } catch (caught) {
      const err = schemaErrorOf(caught) ?? caught;
      const error: ErrorBody = isShoalError(err) ? err.toBody() : errorBodyOf({ message: `${method} failed: ${(err as Error)?.message ?? String(err)}` }, "SHOAL_ERR_HANDLER_FAILED");
      // A forbidden request was logged where it was refused, once per peer a minute.
      if (isShoalError(err)) {
        if (err.code !== "SHOAL_ERR_PEER_FORBIDDEN") this.complaints.info({ method, code: error.code }, "refused a request from peer");
      }
      else this.log.error({ err, method }, "request handler failed");
      frame = { t: "res", id, error };
    } finally {
      this.answering--;
    }
    if (!this.isOpen) return;
    try {
      this.send(frame);
    } catch (err) {
      this.log.warn({ err, method }, "could not send the answer to a request");
    }
  }

  private settle(id: number, body: unknown, error: ErrorBody | undefined): void {
    const pending = this.pending.get(id);
    if (!pending) return; // answered after its timeout: the caller has moved on
    this.pending.delete(id);
    if (error) pending.reject(new ShoalError(error.code, error.message, error.path ? { path: error.path } : {}));
    else pending.resolve(body);
  }

  private onSocketError(err: Error & { code?: string }): void {
    // ws closes the socket itself after these (1009 for an oversized message); count and log.
    this.stats.badFrames++;
    this.complaints.warn({ code: err.code, err: err.message }, "socket error from peer");
  }

  private onClose(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.queue.clear();
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const [id, pending] of this.pending) {
      pending.reject(new ShoalError("SHOAL_ERR_PEER_CLOSED", `connection to ${this.peer.name} closed (${code}) before request ${id} was answered`));
    }
    this.pending.clear();
    this.hooks.closed(this, code, reason);
  }
}
