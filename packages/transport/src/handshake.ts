import {
  type Codec,
  CloseCodes,
  type Frame,
  type HelloFrame,
  type NodeIdentity,
  PROTOCOL_VERSION,
  ShoalError,
  isShoalError,
  monotonicNow,
} from "@shoal/protocol";
import type { WebSocket } from "ws";
import type { TransportErrorCode } from "./errors.js";
import { setFrameCap } from "./frameCap.js";
import { createNonce, proofMatches, proveSecret } from "./secretProof.js";

export interface HandshakeContext {
  identity: NodeIdentity;
  cluster: string;
  /** The cluster secret; without it the node neither asks for nor gives a proof. */
  secret: string | undefined;
  codec: Codec;
  timeoutMs: number;
  /**
   * The acceptor's last word on a peer that has proved itself: throws to refuse it (an id that
   * already has a live connection). Runs before `ready`, so the dialer learns why.
   */
  admit?: (peer: NodeIdentity) => void;
}

/**
 * The handshake, three frames and an ack:
 *   dialer   -> hello {v, cluster, node, nonce}
 *   acceptor -> hello {v, cluster, node, nonce, proof?}   proof = HMAC(secret, "acceptor", both hellos)
 *   dialer   -> auth  {proof?}                            proof = HMAC(secret, "dialer", both hellos)
 *   acceptor -> ready
 * Each side checks version, cluster and (with a secret) the other's proof, and on failure closes
 * with the close code of the error, so both ends can log the same reason. Until the other side
 * has proved itself the socket reads only small frames; the full frame limit (the codec's) is
 * set just before this side's last handshake frame, as the peer may send anything right behind
 * its answer to it.
 */
export interface HandshakeResult {
  peer: NodeIdentity;
  /** Frames the peer sent right behind the handshake, already decoded, to be handled first. */
  early: Frame[];
}

/**
 * With mutual TLS, `certified` is the node name the peer's certificate vouches for (undefined:
 * none); the name the peer claims in its hello must be that one. Without TLS it is not given.
 */
export interface PeerCertificate {
  certified: string | undefined;
}

export async function dialHandshake(ws: WebSocket, ctx: HandshakeContext, cert?: PeerCertificate): Promise<HandshakeResult> {
  const reader = frameReader(ws, ctx);
  try {
    const nonce = createNonce();
    const own: HelloFrame = { t: "hello", v: PROTOCOL_VERSION, cluster: ctx.cluster, node: ctx.identity, nonce };
    send(ws, ctx, own);
    const hello = await reader.next("hello");
    checkHello(hello, ctx, cert);
    if (ctx.secret !== undefined) {
      const expected = proveSecret(ctx.secret, "acceptor", { dialer: own, acceptor: hello });
      if (!proofMatches(expected, hello.proof)) {
        throw fail("SHOAL_ERR_AUTH_FAILED", `${hello.node.name} did not prove it knows the cluster secret`);
      }
    }
    const proof = ctx.secret === undefined ? undefined : proveSecret(ctx.secret, "dialer", { dialer: own, acceptor: hello });
    setFrameCap(ws, ctx.codec.maxFrameBytes);
    send(ws, ctx, proof === undefined ? { t: "auth" } : { t: "auth", proof });
    await reader.next("ready");
    return { peer: hello.node, early: reader.stop() };
  } catch (err) {
    throw abort(ws, err);
  } finally {
    reader.stop();
  }
}

export async function acceptHandshake(ws: WebSocket, ctx: HandshakeContext, cert?: PeerCertificate): Promise<HandshakeResult> {
  const reader = frameReader(ws, ctx);
  try {
    const hello = await reader.next("hello");
    checkHello(hello, ctx, cert);
    const answer: HelloFrame = { t: "hello", v: PROTOCOL_VERSION, cluster: ctx.cluster, node: ctx.identity, nonce: createNonce() };
    const proof = ctx.secret === undefined ? undefined : proveSecret(ctx.secret, "acceptor", { dialer: hello, acceptor: answer });
    send(ws, ctx, proof === undefined ? answer : { ...answer, proof });
    const auth = await reader.next("auth");
    if (ctx.secret !== undefined) {
      const expected = proveSecret(ctx.secret, "dialer", { dialer: hello, acceptor: answer });
      if (!proofMatches(expected, auth.proof)) {
        throw fail("SHOAL_ERR_AUTH_FAILED", `${hello.node.name} (${hello.node.address}) did not prove it knows the cluster secret`);
      }
    }
    ctx.admit?.(hello.node);
    setFrameCap(ws, ctx.codec.maxFrameBytes);
    send(ws, ctx, { t: "ready" });
    return { peer: hello.node, early: reader.stop() };
  } catch (err) {
    throw abort(ws, err);
  } finally {
    reader.stop();
  }
}

function checkHello(hello: HelloFrame, ctx: HandshakeContext, cert: PeerCertificate | undefined): void {
  if (hello.v !== PROTOCOL_VERSION) {
    throw fail("SHOAL_ERR_PROTOCOL_VERSION", `${hello.node.name} speaks protocol ${hello.v}, this node speaks ${PROTOCOL_VERSION}`);
  }
  if (hello.cluster !== ctx.cluster) {
    throw fail("SHOAL_ERR_CLUSTER_MISMATCH", `${hello.node.name} is in cluster "${hello.cluster}", this node is in "${ctx.cluster}"`);
  }
  if (hello.node.id === ctx.identity.id) {
    throw fail("SHOAL_ERR_SELF_CONNECTION", `${hello.node.address} is this node itself`);
  }
  if (cert && cert.certified !== hello.node.name) {
    throw fail("SHOAL_ERR_CERT_NAME_MISMATCH", `a peer claims to be ${hello.node.name} but its certificate is for ${cert.certified ?? "no node"}`);
  }
}

const closeCodeOf: Record<string, number> = {
  SHOAL_ERR_AUTH_FAILED: CloseCodes.AUTH_FAILED,
  SHOAL_ERR_PROTOCOL_VERSION: CloseCodes.PROTOCOL_VERSION,
  SHOAL_ERR_CLUSTER_MISMATCH: CloseCodes.CLUSTER_MISMATCH,
  SHOAL_ERR_HANDSHAKE_TIMEOUT: CloseCodes.HANDSHAKE_TIMEOUT,
  SHOAL_ERR_SELF_CONNECTION: CloseCodes.SELF_CONNECTION,
  SHOAL_ERR_PEER_ID_IN_USE: CloseCodes.PEER_ID_IN_USE,
  SHOAL_ERR_CERT_NAME_MISMATCH: CloseCodes.CERT_NAME_MISMATCH,
};

/** The ShoalError a close code stands for, so the side that was closed on knows why. */
export function errorOfCloseCode(code: number, reason: string): ShoalError {
  const entry = Object.entries(closeCodeOf).find(([, c]) => c === code);
  const errorCode = entry?.[0] ?? "SHOAL_ERR_HANDSHAKE_FAILED";
  return new ShoalError(errorCode, reason || `peer closed the connection during the handshake (${code})`);
}

function abort(ws: WebSocket, err: unknown): ShoalError {
  const error = isShoalError(err) ? err : fail("SHOAL_ERR_HANDSHAKE_FAILED", String(err));
  if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) {
    // Close reasons are limited to 123 bytes on the wire.
    ws.close(closeCodeOf[error.code] ?? CloseCodes.HANDSHAKE_FAILED, Buffer.from(error.message).subarray(0, 120).toString());
    setTimeout(() => ws.terminate(), 1_000).unref();
  }
  return error;
}

function fail(code: TransportErrorCode | "SHOAL_ERR_PROTOCOL_VERSION", message: string): ShoalError {
  return new ShoalError(code, message);
}

function send(ws: WebSocket, ctx: HandshakeContext, frame: Frame): void {
  ws.send(ctx.codec.encode(frame), { binary: true });
}

/** Waits for handshake frames one at a time; anything else, a close or the deadline ends it. */
function frameReader(ws: WebSocket, ctx: HandshakeContext) {
  // Monotonic: a clock step must neither cut a handshake short nor stretch it.
  const deadline = monotonicNow() + ctx.timeoutMs;
  const buffered: Frame[] = [];
  let failure: ShoalError | undefined;
  let wake: (() => void) | undefined;
  const onMessage = (data: Buffer, isBinary: boolean) => {
    try {
      if (!isBinary) throw fail("SHOAL_ERR_HANDSHAKE_FAILED", "text message during the handshake");
      buffered.push(ctx.codec.decode(data));
    } catch (err) {
      failure ??= isShoalError(err) ? err : fail("SHOAL_ERR_HANDSHAKE_FAILED", String(err));
    }
    wake?.();
  };
  const onClose = (code: number, reason: Buffer) => {
    failure ??= errorOfCloseCode(code, reason.toString());
    wake?.();
  };
  const onError = (err: Error) => {
    failure ??= fail("SHOAL_ERR_HANDSHAKE_FAILED", err.message);
    wake?.();
  };
  ws.on("message", onMessage);
  ws.on("close", onClose);
  ws.on("error", onError);
  return {
    async next<T extends "hello" | "auth" | "ready">(type: T): Promise<Extract<Frame, { t: T }>> {
      for (;;) {
        const frame = buffered.shift();
        if (frame) {
          if (frame.t !== type) throw fail("SHOAL_ERR_HANDSHAKE_FAILED", `expected a ${type} frame, got ${frame.t}`);
          return frame as Extract<Frame, { t: T }>;
        }
        if (failure) throw failure;
        const left = deadline - monotonicNow();
        if (left <= 0) throw fail("SHOAL_ERR_HANDSHAKE_TIMEOUT", `handshake did not finish within ${ctx.timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    },
    /** Detaches from the socket; returns frames that arrived after the last one read. */
    stop(): Frame[] {
      ws.off("message", onMessage);
      ws.off("close", onClose);
      ws.off("error", onError);
      return buffered.splice(0);
    },
  };
}
