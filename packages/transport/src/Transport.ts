import { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import {
  type CastMethodOf,
  type Codec,
  CloseCodes,
  DEFAULT_MAX_FRAME_BYTES,
  type Frame,
  type Logger,
  type NodeIdentity,
  PEER_METHODS,
  type PeerMethodSpec,
  type PeerMethodTable,
  type PeerMethods,
  type PeerRequestBody,
  type PeerRequestInput,
  type PeerResponseBody,
  type PeerResponseInput,
  type RequestMethodOf,
  ShoalError,
  LIMIT_DEFAULTS,
  LogLimiter,
  createCodec,
  describeZodError,
  ErrorBodySchema,
  errorBodyOf,
  isShoalError,
  monotonicNow,
  schemaErrorOf,
} from "@shoal/protocol";
import type { z } from "zod";
import { WebSocket, WebSocketServer } from "ws";
import { type BackoffOptions, createBackoff } from "./backoff.js";
import { ForbiddenMessages } from "./ForbiddenMessages.js";
import { type HandshakeContext, type HandshakeResult, acceptHandshake, dialHandshake } from "./handshake.js";
import { PendingConnections } from "./PendingConnections.js";
import { type TlsMaterial, certifiedName, uncertifiedReason } from "./peerCertificate.js";
import { refuseUpgrade } from "./refuseUpgrade.js";
import { type Direction, PeerConnection, type PeerConnectionOptions } from "./PeerConnection.js";
import type { SendQueueOptions } from "./SendQueue.js";
import { type TransportStats, createTransportStats } from "./TransportStats.js";

export const MESH_PATH = "/mesh";

export interface TransportOptions<M extends PeerMethodTable = PeerMethods> extends SendQueueOptions {
  identity: NodeIdentity;
  /** The methods peers may call, with their schemas and sender rules (PEER_METHODS). */
  methods?: M;
  cluster: string;
  /** Cluster secret; with it every peer must prove it knows the same one. */
  secret?: string | undefined;
  /**
   * Mutual TLS: peers are dialed over wss with this node's certificate, and must present one the
   * cluster CA signed for the name they claim. The HTTP server in front of `handleUpgrade` must
   * then be an https server that asks for client certificates (`requestCert`).
   */
  tls?: TlsMaterial | undefined;
  logger: Logger;
  maxFrameBytes?: number;
  /** Largest frame read from a peer that has not finished the handshake (64 KiB). */
  maxHandshakeFrameBytes?: number;
  handshakeTimeoutMs?: number;
  /** Incoming connections still in the handshake, in all (256) and from one address (16). */
  maxPendingConnections?: number;
  maxPendingPerAddress?: number;
  /** Requests from one peer answered at once; more are refused with SHOAL_ERR_OVERLOADED (1024). */
  maxPeerRequests?: number;
  /** Ping interval on every connection. */
  heartbeatMs?: number;
  /** A connection with no frame from the peer for this long is closed as hung. */
  deadAfterMs?: number;
  stallTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Redial delays for `maintain`. */
  backoff?: BackoffOptions;
}

/**
 * A method's sender rule, checked after its body passed the schema: the reason the sender may not
 * send this, or undefined when it may. Refusals are SHOAL_ERR_PEER_FORBIDDEN, counted and logged.
 */
export type Authorizer<Body> = (body: Body, from: NodeIdentity) => string | undefined;

export type RequestHandler<M extends PeerMethodTable = PeerMethods, K extends RequestMethodOf<M> = RequestMethodOf<M>> = (
  body: PeerRequestBody<M, K>,
  from: NodeIdentity,
) => PeerResponseInput<M, K> | Promise<PeerResponseInput<M, K>>;
export type CastHandler<M extends PeerMethodTable = PeerMethods, K extends CastMethodOf<M> = CastMethodOf<M>> = (body: PeerRequestBody<M, K>, from: NodeIdentity) => void;

/** A rule other than "any member" cannot be left out: the handler is registered with its authorizer. */
type AuthorizerArg<M extends PeerMethodTable, K extends keyof M> = M[K]["sender"] extends "member"
  ? [authorize?: Authorizer<PeerRequestBody<M, K>>]
  : [authorize: Authorizer<PeerRequestBody<M, K>>];

interface Registered {
  handler: (body: unknown, from: NodeIdentity) => unknown;
  authorize: Authorizer<unknown> | undefined;
}

export interface DialFailure {
  address: string;
  error: ShoalError;
  /** The socket's errno when the TCP connect itself failed, e.g. ECONNREFUSED. */
  errno: string | undefined;
  attempt: number;
}

export interface TransportEvents {
  /** A peer finished the handshake and is the connection of record for its id. */
  connected: [conn: PeerConnection];
  /** The connection of record for a peer closed. */
  disconnected: [conn: PeerConnection, code: number, reason: string];
  /** A frame for the layers above (everything but handshake, ping, pong, req, res, error). */
  frame: [frame: Frame, conn: PeerConnection];
  dialFailed: [failure: DialFailure];
}

/**
 * The node's end of the peer-to-peer network: accepts peers on `/mesh`, dials them, keeps one
 * connection of record per peer id, and routes requests to handlers by method name. Every
 * method is one of the table's: a request body, a cast body and an answer are parsed with its
 * schemas, and the receiver's rule says whether the sender may send it.
 */
export class Transport<M extends PeerMethodTable = PeerMethods> extends EventEmitter<TransportEvents> {
  readonly stats: TransportStats = createTransportStats();
  readonly codec: Codec;
  readonly identity: NodeIdentity;
  private readonly log: Logger;
  private readonly methods: PeerMethodTable;
  private readonly forbidden: ForbiddenMessages;
  private readonly conns = new Map<string, PeerConnection>();
  private readonly handlers = new Map<string, Registered>();
  private readonly castHandlers = new Map<string, Registered>();
  private readonly maintained = new Map<string, { stop(): void }>();
  private readonly pendingSockets = new Set<WebSocket>();
  private readonly pending: PendingConnections;
  /** Failed handshakes and refused connections: logged a few per window, all counted. */
  private readonly refusals: LogLimiter;
  private readonly maxHandshakeFrameBytes: number;
  private readonly wss: WebSocketServer;
  private readonly handshake: HandshakeContext;
  private readonly connectionOptions: PeerConnectionOptions;
  private closing = false;

  constructor(private readonly options: TransportOptions<M>) {
    super();
    this.identity = options.identity;
    this.log = options.logger.child({ component: "transport" });
    this.methods = options.methods ?? PEER_METHODS;
    this.forbidden = new ForbiddenMessages(this.log, this.stats);
    const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.codec = createCodec({ maxFrameBytes });
    this.maxHandshakeFrameBytes = Math.min(options.maxHandshakeFrameBytes ?? LIMIT_DEFAULTS["max-handshake-frame-bytes"], maxFrameBytes);
    this.pending = new PendingConnections({
      total: options.maxPendingConnections ?? LIMIT_DEFAULTS["max-pending-connections"],
      perAddress: options.maxPendingPerAddress ?? LIMIT_DEFAULTS["max-pending-per-address"],
    });
    this.refusals = new LogLimiter(this.log);
    this.handshake = {
      identity: options.identity,
      cluster: options.cluster,
      secret: options.secret,
      codec: this.codec,
      timeoutMs: options.handshakeTimeoutMs ?? LIMIT_DEFAULTS["handshake-timeout-ms"],
      admit: (peer) => this.admitPeer(peer),
    };
    this.connectionOptions = {
      heartbeatMs: options.heartbeatMs ?? 500,
      deadAfterMs: options.deadAfterMs ?? 5_000,
      ...(options.stallTimeoutMs !== undefined && { stallTimeoutMs: options.stallTimeoutMs }),
      ...(options.requestTimeoutMs !== undefined && { requestTimeoutMs: options.requestTimeoutMs }),
      ...(options.highWaterBytes !== undefined && { highWaterBytes: options.highWaterBytes }),
      ...(options.maxQueueBytes !== undefined && { maxQueueBytes: options.maxQueueBytes }),
      maxPeerRequests: options.maxPeerRequests ?? LIMIT_DEFAULTS["max-peer-requests"],
    };
    // ws answers a message over maxPayload by closing with 1009 on its own. The cap starts small
    // and is raised once the peer has proved itself (see handshake.ts).
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.maxHandshakeFrameBytes, perMessageDeflate: false });
    // An upgrade ws itself refuses (no key, another version) gets the API's error body, not ws's text/html.
    this.wss.on("wsClientError", (err, socket) => {
      this.stats.handshakeFailures++;
      refuseUpgrade(socket, 400, { code: "SHOAL_ERR_HANDSHAKE_FAILED", message: `not a WebSocket upgrade: ${err.message}` });
    });
  }

  /** Takes an HTTP upgrade if it is for `/mesh`; returns false so the caller can route others. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = (req.url ?? "").split("?")[0];
    if (path !== MESH_PATH) return false;
    if (this.closing) {
      socket.destroy();
      return true;
    }
    const address = req.socket.remoteAddress ?? "unknown";
    const remote = `${address}:${req.socket.remotePort}`;
    const admitted = this.pending.admit(address);
    if ("refused" in admitted) {
      this.stats.refusedConnections++;
      this.refusals.warn({ code: "SHOAL_ERR_OVERLOADED", remote, pending: this.pending.size }, `refused a connection on ${MESH_PATH}: ${admitted.refused}`);
      refuseUpgrade(socket, 503, { code: "SHOAL_ERR_OVERLOADED", message: `${this.identity.name} refused the connection: ${admitted.refused}` }, { "Retry-After": "1" });
      return true;
    }
    const certified = this.options.tls ? certifiedName(req.socket) : undefined;
    if (this.options.tls && certified === undefined) {
      admitted.release();
      this.stats.handshakeFailures++;
      const why = uncertifiedReason(req);
      this.refusals.warn({ code: "SHOAL_ERR_PEER_CERT_REQUIRED", remote }, `refused a connection on ${MESH_PATH}: ${why}`);
      refuseUpgrade(socket, 401, { code: "SHOAL_ERR_PEER_CERT_REQUIRED", message: `${MESH_PATH} needs a certificate signed by the cluster CA for a node: ${why}` });
      return true;
    }
    // Until ws has the socket (it may refuse the upgrade itself), the slot goes with the socket.
    socket.once("close", admitted.release);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.guard(ws);
      this.pendingSockets.add(ws);
      acceptHandshake(ws, this.handshake, this.options.tls ? { certified } : undefined)
        .then((result) => this.adopt(ws, result, "in"))
        .catch((err: ShoalError) => this.handshakeFailed(err, { remote, direction: "in" }))
        .finally(() => {
          this.pendingSockets.delete(ws);
          admitted.release();
        });
    });
    return true;
  }

  /** Opens one connection to `address` (host:port) and completes the handshake. */
  async dial(address: string): Promise<PeerConnection> {
    const tls = this.options.tls;
    const ws = new WebSocket(`${tls ? "wss" : "ws"}://${address}${MESH_PATH}`, {
      maxPayload: this.maxHandshakeFrameBytes,
      perMessageDeflate: false,
      handshakeTimeout: this.handshake.timeoutMs,
      // The chain is checked against the cluster CA; the host name is not, because peers are
      // dialed at whatever address gossip gave. Who the peer is comes from the name its
      // certificate is for, checked against the name it claims in the handshake. (Node takes any
      // falsy answer of checkServerIdentity as "no error"; ws types it as a boolean.)
      ...(tls && { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: true, checkServerIdentity: () => false }),
    });
    this.guard(ws);
    this.pendingSockets.add(ws);
    let certified: string | undefined;
    if (tls) ws.once("upgrade", (res) => (certified = certifiedName(res.socket)));
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once("open", resolve);
        ws.once("error", reject);
        ws.once("unexpected-response", (_req, res) => {
          void refusalOf(res).then((refusal) =>
            reject(
              refusal
                ? new ShoalError("SHOAL_ERR_DIAL_FAILED", `${address} refused this node: ${refusal.code}: ${refusal.message}`, { cause: refusal })
                : new ShoalError("SHOAL_ERR_DIAL_FAILED", `${address} answered HTTP ${res.statusCode}: not a Shoal node`),
            ),
          );
        });
      });
    } catch (err) {
      ws.terminate();
      this.pendingSockets.delete(ws);
      const failure = isShoalError(err) ? err : new ShoalError("SHOAL_ERR_DIAL_FAILED", `cannot reach ${address}: ${(err as Error).message}`, { cause: err });
      // A certificate either side refuses is a setup to fix (another CA, a node without its
      // --tls-dir), not a peer being away: say so where the operator looks, at a rate.
      const cause = failure.cause as { code?: string } | undefined;
      if ((cause?.code !== undefined && TLS_REFUSALS.has(cause.code)) || cause?.code === "SHOAL_ERR_PEER_CERT_REQUIRED") {
        this.refusals.warn({ code: "SHOAL_ERR_DIAL_FAILED", cause: cause.code, address }, failure.message);
      }
      throw failure;
    }
    try {
      const result = await dialHandshake(ws, this.handshake, tls ? { certified } : undefined);
      return this.adopt(ws, result, "out");
    } catch (err) {
      this.handshakeFailed(err as ShoalError, { remote: address, direction: "out" });
      throw err;
    } finally {
      this.pendingSockets.delete(ws);
    }
  }

  /**
   * Keeps a connection to `address` open: dials now and after every loss, with exponential
   * backoff and jitter, until `release(address)`. No dial happens while some connection (in either
   * direction) to the node at that address is open.
   */
  maintain(address: string): void {
    if (this.maintained.has(address) || this.closing) return;
    const backoff = createBackoff(this.options.backoff);
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let wakeUp: (() => void) | undefined;
    const wait = (ms: number) =>
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
        timer.unref();
        wakeUp = resolve;
      });
    // Resolves once the peer behind `conn` has no connection of record left.
    const waitForLoss = (conn: PeerConnection) =>
      new Promise<void>((resolve) => {
        const onGone = (c: PeerConnection) => {
          if (c.peer.id === conn.peer.id) done();
        };
        const done = () => {
          this.off("disconnected", onGone);
          wakeUp = undefined;
          resolve();
        };
        this.on("disconnected", onGone);
        wakeUp = done;
        if (this.connection(conn.peer.id)?.isOpen !== true) done();
      });
    const loop = async () => {
      let attempt = 0;
      while (!stopped && !this.closing) {
        const existing = this.connectionTo(address);
        if (existing) {
          backoff.reset();
          attempt = 0;
          await waitForLoss(existing);
          continue;
        }
        attempt++;
        if (attempt > 1) this.stats.reconnects++;
        try {
          await this.dial(address);
          continue;
        } catch (err) {
          const error = isShoalError(err) ? err : new ShoalError("SHOAL_ERR_DIAL_FAILED", String(err));
          const errno = (error.cause as NodeJS.ErrnoException | undefined)?.code;
          this.emit("dialFailed", { address, error, errno, attempt });
        }
        if (!stopped && !this.closing) await wait(backoff.next());
      }
    };
    this.maintained.set(address, {
      stop() {
        stopped = true;
        clearTimeout(timer);
        wakeUp?.();
      },
    });
    void loop();
  }

  release(address: string): void {
    this.maintained.get(address)?.stop();
    this.maintained.delete(address);
  }

  isMaintained(address: string): boolean {
    return this.maintained.has(address);
  }

  /** Answers requests for `method` with `handler`, once `authorize` (the method's sender rule) lets them through. */
  handle<K extends RequestMethodOf<M>>(method: K, handler: RequestHandler<M, K>, ...[authorize]: AuthorizerArg<M, K>): void {
    this.handlers.set(method, this.registered(method, "request", handler as Registered["handler"], authorize as Authorizer<unknown> | undefined));
  }

  /** Handles one-way `cast` frames for `method`. */
  handleCast<K extends CastMethodOf<M>>(method: K, handler: CastHandler<M, K>, ...[authorize]: AuthorizerArg<M, K>): void {
    this.castHandlers.set(method, this.registered(method, "cast", handler as Registered["handler"], authorize as Authorizer<unknown> | undefined));
  }

  /**
   * Refuses what a peer may not send (a message the layers above check themselves, like a
   * gossip record about another node): counted in `stats.forbiddenMessages`, logged once per
   * peer per minute. Returns the SHOAL_ERR_PEER_FORBIDDEN error to answer with.
   */
  forbid(peer: NodeIdentity, what: string, reason: string): ShoalError {
    return this.forbidden.refuse(peer, what, reason);
  }

  private registered(method: string, kind: PeerMethodSpec["kind"], handler: Registered["handler"], authorize: Authorizer<unknown> | undefined): Registered {
    const spec = this.methods[method];
    if (spec?.kind !== kind) throw new Error(`${method} is not a ${kind} method of the peer method table`);
    if (spec.sender !== "member" && !authorize) throw new Error(`${method} may only be sent by "${spec.sender}": its handler needs the rule`);
    return { handler, authorize };
  }

  /** One-way message to a peer; throws SHOAL_ERR_NOT_CONNECTED or SHOAL_ERR_BACKPRESSURE. */
  cast<K extends CastMethodOf<M>>(peerId: string, method: K, body: PeerRequestInput<M, K>, options: { droppable?: boolean } = {}): void {
    this.send(peerId, { t: "cast", method, body }, options);
  }

  connection(peerId: string): PeerConnection | undefined {
    return this.conns.get(peerId);
  }

  connections(): PeerConnection[] {
    return [...this.conns.values()];
  }

  /** The open connection to the node that advertises `address`, if any. */
  connectionTo(address: string): PeerConnection | undefined {
    for (const conn of this.conns.values()) if (conn.peer.address === address && conn.isOpen) return conn;
    return undefined;
  }

  /**
   * Calls `method` on a peer and resolves with its answer, parsed with the method's response
   * schema: an answer that fails it is SHOAL_ERR_BAD_SCHEMA for the caller, never passed on.
   */
  request<K extends RequestMethodOf<M>>(peerId: string, method: K, body: PeerRequestInput<M, K>, options: { timeoutMs?: number } = {}): Promise<PeerResponseBody<M, K>> {
    const conn = this.conns.get(peerId);
    if (!conn) return Promise.reject(new ShoalError("SHOAL_ERR_NOT_CONNECTED", `no connection to node ${peerId}`));
    const schema = (this.methods[method] as { response: z.ZodType }).response;
    return conn.request(method, body, options).then((answer) => {
      const parsed = schema.safeParse(answer);
      if (parsed.success) return parsed.data as PeerResponseBody<M, K>;
      const { message, path } = describeZodError(parsed.error);
      throw new ShoalError("SHOAL_ERR_BAD_SCHEMA", `the answer of ${conn.peer.name} to ${method}: ${message}`, { path });
    });
  }

  send(peerId: string, frame: Frame, options: { droppable?: boolean } = {}): void {
    const conn = this.conns.get(peerId);
    if (!conn) throw new ShoalError("SHOAL_ERR_NOT_CONNECTED", `no connection to node ${peerId}`);
    conn.send(frame, options);
  }

  /** Sends a droppable frame to every connected peer; a full queue skips that peer. */
  broadcast(frame: Frame): void {
    for (const conn of this.conns.values()) {
      if (!conn.isOpen) continue;
      try {
        conn.send(frame, { droppable: true });
      } catch (err) {
        this.log.debug({ err, peer: conn.peer.name }, "broadcast skipped a peer");
      }
    }
  }

  /** Closes every connection with 1001 and stops dialing. */
  async close(): Promise<void> {
    this.closing = true;
    for (const address of [...this.maintained.keys()]) this.release(address);
    // Peers get a second to acknowledge 1001; a wedged one is cut off after that.
    const closed = [...this.conns.values()].map((conn) => conn.close(CloseCodes.GOING_AWAY, "node shutting down", 1_000));
    for (const ws of this.pendingSockets) ws.terminate();
    await Promise.all(closed);
    this.wss.close();
  }

  private adopt(ws: WebSocket, { peer, early }: HandshakeResult, direction: Direction): PeerConnection {
    const conn = new PeerConnection(
      ws,
      this.codec,
      {
        peer,
        direction,
        logger: this.log,
        stats: this.stats,
        hooks: {
          frame: (c, frame) => this.emit("frame", frame, c),
          request: (c, method, body) => this.answer(c, method, body),
          cast: (c, method, body) => this.onCast(c, method, body),
          closed: (c, code, reason) => this.onClosed(c, code, reason),
        },
      },
      this.connectionOptions,
    );
    const existing = this.conns.get(peer.id);
    if (existing?.isOpen && direction === "in") {
      // Admitted during the handshake, but another connection may have been adopted since.
      try {
        this.admitPeer(peer);
      } catch (err) {
        void conn.close(CloseCodes.PEER_ID_IN_USE, (err as Error).message.slice(0, 120), 0);
        throw err;
      }
    }
    if (existing?.isOpen) {
      // Both nodes may dial each other at once. Both keep the connection dialed by the node with
      // the smaller id, so they agree without talking about it.
      // (Equal dialers: the same node redialed, and the newer connection is the live one.)
      if (this.dialerOf(conn) > this.dialerOf(existing)) {
        void conn.close(CloseCodes.DUPLICATE, "duplicate connection");
        return existing;
      }
      this.conns.set(peer.id, conn);
      void existing.close(CloseCodes.DUPLICATE, "duplicate connection");
    } else {
      this.conns.set(peer.id, conn);
    }
    this.log.info({ peer: peer.name, peerId: peer.id, address: peer.address, direction }, "peer connected");
    this.emit("connected", conn);
    conn.deliverEarly(early);
    return conn;
  }

  /**
   * ws emits `error` for what a peer sends (a frame over the cap, bad UTF-8 in a close reason) and
   * an emitter without a listener turns that into an uncaught exception. The handshake and the
   * connection listen while they own the socket; this one listens for the socket's whole life.
   */
  private guard(ws: WebSocket): void {
    ws.on("error", (err: Error & { code?: string }) => {
      this.log.debug({ code: err.code, err: err.message }, "socket error");
    });
  }

  /**
   * A second connection under the id of a connected peer is refused, the live one kept: else
   * anyone could take a node's place by connecting under its id. Only when our own dial to it is
   * younger than a handshake (both nodes dialed each other at once) does `adopt` choose.
   */
  private admitPeer(peer: NodeIdentity): void {
    const existing = this.conns.get(peer.id);
    if (!existing?.isOpen) return;
    const raceWindowMs = this.handshake.timeoutMs;
    if (existing.direction === "out" && monotonicNow() - existing.openedAt < raceWindowMs) return;
    throw new ShoalError("SHOAL_ERR_PEER_ID_IN_USE", `node id ${peer.id} (${peer.name}) is connected already from ${existing.peer.address}`);
  }

  private dialerOf(conn: PeerConnection): string {
    return conn.direction === "out" ? this.identity.id : conn.peer.id;
  }

  private async answer(conn: PeerConnection, method: string, body: unknown): Promise<unknown> {
    const registered = this.handlers.get(method);
    if (!registered) throw new ShoalError("SHOAL_ERR_NO_HANDLER", `no handler for method "${method}" on ${this.identity.name}`);
    return registered.handler(this.admit(conn.peer, method, registered, body), conn.peer);
  }

  /** The body parsed with the method's schema, if its sender may send it; else the error to answer with. */
  private admit(from: NodeIdentity, method: string, registered: Registered, body: unknown): unknown {
    const parsed = (this.methods[method] as PeerMethodSpec).request.safeParse(body);
    if (!parsed.success) {
      const { message, path } = describeZodError(parsed.error);
      throw new ShoalError("SHOAL_ERR_BAD_SCHEMA", `${method} body: ${message}`, { path });
    }
    const refusal = registered.authorize?.(parsed.data, from);
    if (refusal !== undefined) throw this.forbidden.refuse(from, method, refusal);
    return parsed.data;
  }

  private onCast(conn: PeerConnection, method: string, body: unknown): void {
    const registered = this.castHandlers.get(method);
    if (!registered) {
      this.refusals.warn({ method, peer: conn.peer.name }, "cast for a method with no handler");
      // Frames still arrive while a close is under way: then there is nobody to tell.
      if (conn.isOpen) conn.send({ t: "error", error: { code: "SHOAL_ERR_NO_HANDLER", message: `no cast handler for "${method}"` } }, { droppable: true });
      return;
    }
    try {
      registered.handler(this.admit(conn.peer, method, registered, body), conn.peer);
    } catch (caught) {
      const err = schemaErrorOf(caught, `${method} body`) ?? caught;
      const body = errorBodyOf(isShoalError(err) ? err : { message: (err as Error)?.message ?? String(err) }, "SHOAL_ERR_HANDLER_FAILED");
      // A forbidden cast was logged by its own limiter, once per peer a minute.
      if (body.code !== "SHOAL_ERR_PEER_FORBIDDEN") this.refusals.warn({ method, peer: conn.peer.name, error: body }, "cast handler refused a message");
      if (conn.isOpen) conn.send({ t: "error", error: body }, { droppable: true });
    }
  }

  private onClosed(conn: PeerConnection, code: number, reason: string): void {
    if (this.conns.get(conn.peer.id) !== conn) return;
    this.conns.delete(conn.peer.id);
    this.log.info({ peer: conn.peer.name, peerId: conn.peer.id, code, reason }, "peer disconnected");
    this.emit("disconnected", conn, code, reason);
  }

  private handshakeFailed(err: ShoalError, where: { remote: string; direction: Direction }): void {
    this.stats.handshakeFailures++;
    if (err.code === "SHOAL_ERR_AUTH_FAILED") this.stats.authFailures++;
    const level = err.code === "SHOAL_ERR_AUTH_FAILED" || err.code === "SHOAL_ERR_CLUSTER_MISMATCH" || err.code === "SHOAL_ERR_PEER_ID_IN_USE" ? "warn" : "info";
    this.refusals[level]({ code: err.code, ...where }, `handshake failed: ${err.message}`);
  }
}

/** What the TLS layer says when the peer's certificate is not the cluster CA's (or not a certificate). */
const TLS_REFUSALS = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_SIGNATURE_FAILURE",
  "EPROTO",
]);

/** The error body of a refused upgrade (a Shoal node answers with one), read up to 16 KiB. */
function refusalOf(res: IncomingMessage): Promise<ShoalError | undefined> {
  return new Promise((resolve) => {
    let text = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      text += chunk;
      if (text.length > 16_384) res.destroy();
    });
    res.on("error", () => resolve(undefined));
    res.on("close", () => {
      try {
        const body = ErrorBodySchema.safeParse((JSON.parse(text) as { error?: unknown }).error);
        resolve(body.success ? new ShoalError(body.data.code, body.data.message) : undefined);
      } catch {
        resolve(undefined);
      }
    });
  });
}

