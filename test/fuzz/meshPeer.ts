import { PROTOCOL_VERSION } from "@shoal/protocol";
import { Packr } from "msgpackr";
import { WebSocket } from "ws";
import { DEAD_ADDRESS, type PeerIdentity, type Session } from "./frameArbs.js";
import { type Targets, messageOf, pack, resolve } from "./frameBytes.js";

/**
 * The fuzzing peer: runs one session against a node's `/mesh`. It must survive whatever the node
 * answers (error frames, closes, refused upgrades, resets), so every socket has an error
 * listener from birth to death, and nothing it receives is trusted to decode.
 */

/** Fuzz sockets come from another loopback address, so the per-address caps never hit the real peers. */
export const FUZZ_SOURCE = "127.0.0.2";
const unpackr = new Packr({ useRecords: false });

export interface SessionOutcome {
  /** Close codes the node sent (or 1006 for a drop). */
  closes: number[];
  /** Upgrades the node refused, by HTTP status. */
  refused: number[];
  /** Error frames the node answered with, by code. */
  errors: string[];
  /** Handshakes that did not reach `ready`. */
  handshakeFailed: number;
  sent: number;
}

const newOutcome = (): SessionOutcome => ({ closes: [], refused: [], errors: [], handshakeFailed: 0, sent: 0 });

interface Socket {
  ws: WebSocket;
  opened: Promise<boolean>;
  closed: Promise<number>;
  frames: { t?: unknown; error?: { code?: unknown } }[];
}

function open(address: string, outcome: SessionOutcome): Socket {
  const ws = new WebSocket(`ws://${address}/mesh`, { maxPayload: 64 * 1024 * 1024, localAddress: FUZZ_SOURCE, handshakeTimeout: 5_000 });
  const frames: Socket["frames"] = [];
  ws.on("error", () => {});
  ws.on("message", (data, isBinary) => {
    if (!isBinary) return;
    try {
      const frame = unpackr.unpack(data as Buffer) as Socket["frames"][number];
      frames.push(frame);
      if (frame?.t === "error" && typeof frame.error?.code === "string") outcome.errors.push(frame.error.code);
      // Answer heartbeats like a live peer, so the node keeps the session open.
      if (frame?.t === "ping" && ws.readyState === ws.OPEN) ws.send(pack({ t: "pong", ts: (frame as { ts?: unknown }).ts ?? 0 }), () => {});
    } catch {
      // Whatever the node sent, the fuzzer is not the one under test.
    }
  });
  const opened = new Promise<boolean>((resolveOpen) => {
    ws.once("open", () => resolveOpen(true));
    ws.once("unexpected-response", (_req, res) => {
      outcome.refused.push(res.statusCode ?? 0);
      res.on("error", () => {});
      res.resume();
      resolveOpen(false);
      ws.terminate();
    });
    ws.once("close", () => resolveOpen(false));
  });
  const closed = new Promise<number>((resolveClose) =>
    ws.once("close", (code) => {
      outcome.closes.push(code);
      resolveClose(code);
    }),
  );
  return { ws, opened, closed, frames };
}

function send(s: Socket, message: Buffer | string, outcome: SessionOutcome): void {
  if (s.ws.readyState !== s.ws.OPEN) return;
  outcome.sent++;
  s.ws.send(message, { binary: typeof message !== "string" }, () => {});
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(s: Socket, t: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (s.frames.some((f) => f?.t === t)) return true;
    if (s.ws.readyState === s.ws.CLOSED) return false;
    await sleep(2);
  }
  return false;
}

function hello(peer: PeerIdentity, targets: Targets) {
  return pack({
    t: "hello",
    v: PROTOCOL_VERSION,
    cluster: "shoal",
    node: resolve({ id: peer.id, name: peer.name, address: DEAD_ADDRESS, capabilities: [], tools: [], slots: 1 }, targets),
    nonce: "ab".repeat(32),
  });
}

/** Hello, answer, auth, ready: false when the node does not finish it. */
async function handshake(s: Socket, peer: PeerIdentity, targets: Targets, outcome: SessionOutcome, until: "hello" | "ready" = "ready"): Promise<boolean> {
  if (!(await s.opened)) return false;
  send(s, hello(peer, targets), outcome);
  if (until === "hello") return true;
  if (!(await waitFor(s, "hello", 3_000))) return false;
  send(s, pack({ t: "auth" }), outcome);
  return waitFor(s, "ready", 3_000);
}

/** Waits for the socket to end by itself for up to `ms`, then drops it. */
async function finish(s: Socket, ms: number): Promise<void> {
  await Promise.race([s.closed, sleep(ms)]);
  s.ws.terminate();
  await Promise.race([s.closed, sleep(1_000)]);
}

export async function runSession(session: Session, targets: Targets): Promise<SessionOutcome> {
  const outcome = newOutcome();
  const address = targets.addresses[session.node]!;
  switch (session.mode) {
    case "pre": {
      const s = open(address, outcome);
      if (await s.opened) {
        for (const action of session.actions) {
          if (action.k === "pause") await sleep(action.ms);
          else send(s, messageOf(action, targets)!, outcome);
        }
      }
      await finish(s, 50);
      break;
    }
    case "post": {
      const s = open(address, outcome);
      if (!(await handshake(s, session.peer, targets, outcome))) {
        outcome.handshakeFailed++;
        await finish(s, 0);
        break;
      }
      for (const action of session.actions) {
        if (action.k === "pause") await sleep(action.ms);
        else send(s, messageOf(action, targets)!, outcome);
      }
      // Let the node read what was sent before the socket goes.
      await Promise.race([s.closed, sleep(30)]);
      if (session.close === "terminate") s.ws.terminate();
      else if (s.ws.readyState === s.ws.OPEN) s.ws.close(session.close);
      await finish(s, 200);
      break;
    }
    case "idle": {
      const sockets = Array.from({ length: session.sockets }, () => open(address, outcome));
      await Promise.all(
        sockets.slice(0, session.handshaken).map(async (s, i) => {
          if (!(await handshake(s, { id: `fz-idle-${i}-${Date.now()}`, name: `fz-idle-${i}` }, targets, outcome))) outcome.handshakeFailed++;
        }),
      );
      await sleep(session.holdMs);
      await Promise.all(sockets.map((s) => finish(s, 0)));
      break;
    }
    case "storm": {
      const once = async () => {
        const s = open(address, outcome);
        if (session.stopAt !== "open") {
          const ok = await handshake(s, session.peer, targets, outcome, session.stopAt);
          if (!ok && session.stopAt === "ready") outcome.handshakeFailed++;
        } else {
          await s.opened;
        }
        await finish(s, 0);
      };
      if (session.parallel) await Promise.all(Array.from({ length: session.times }, once));
      else for (let i = 0; i < session.times; i++) await once();
      break;
    }
  }
  return outcome;
}
