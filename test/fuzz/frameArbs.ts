import { type Frame, type Member, type NodeIdentity, PROTOCOL_VERSION } from "@shoal/protocol";
import fc from "fast-check";

/**
 * Inputs for `/mesh`, as fast-check arbitraries. Values stay small and printable: big or
 * hand-built byte strings are kept as recipes (`deep`, `lie`, `huge`, `mutated`) that `bytes.ts`
 * turns into bytes when the action is sent, so a finding's input can be shown and replayed.
 *
 * Members and peers that must name a real node use the placeholders `@@id:N@@` / `@@addr:N@@`
 * (N = slot 0..2), replaced by that node's current id or address at send time: the ids change
 * whenever the harness starts a fresh mesh, the recipe does not.
 */

/** Where invented members live: a privileged port nobody listens on, so a dial is refused at once. */
export const DEAD_ADDRESS = "127.0.0.1:1";

export const realId = (slot: number) => `@@id:${slot}@@`;
export const realAddress = (slot: number) => `@@addr:${slot}@@`;

/** Request and cast methods the node has handlers for (and a few it has not). */
export const REQUEST_METHODS = [
  "host.spawn", "host.send", "host.ask", "host.stop", "host.holds", "sup.outcome", "sup.handoff", "actor.send", "actor.ask",
  "actor.stop", "actor.get", "workflow.state", "workflow.result", "workflow.cancel", "workflow.list",
  "workflow.replica", "workflow.claims", "inspect.subscribe",
];
export const CAST_METHODS = ["sup.update", "workflow.claimed", "inspect.subscribe", "inspect.events", "xstate.stop"];
/** Tools and agents a spawn may name. Never `http_request`: nothing here may ask a node to dial out. */
export const LOGIC_NAMES = ["summarize", "vision_agent", "llm_complete", "nope"];

export type Action =
  /** A frame object, MessagePack-encoded as it is. */
  | { k: "frame"; frame: unknown }
  /** A valid frame's bytes, then bit flips, insertions, deletions and a cut. */
  | { k: "mutated"; frame: Frame; edits: Edit[] }
  /** A MessagePack header that announces more than follows (`announced` items or bytes, `actual` present). */
  | { k: "lie"; type: LieType; announced: number; actual: number; inFrame: boolean }
  /** `depth` nested arrays or maps, alone or as the body of a cast. */
  | { k: "deep"; depth: number; kind: "array" | "map"; inFrame: boolean }
  /** A frame of about `bytes` bytes: a cast whose body is one long string, or raw bytes. */
  | { k: "huge"; bytes: number; as: "cast" | "raw" | "hello" }
  /** Gossip listing `count` invented members. */
  | { k: "flood"; count: number }
  | { k: "raw"; bytes: number[] }
  | { k: "text"; text: string }
  | { k: "pause"; ms: number };

export type Edit = { op: "flip"; at: number; bit: number } | { op: "insert"; at: number; byte: number } | { op: "delete"; at: number } | { op: "cut"; at: number };
export type LieType = "str8" | "str16" | "str32" | "bin8" | "bin16" | "bin32" | "array16" | "array32" | "map16" | "map32" | "ext32";

export interface PeerIdentity {
  id: string;
  name: string;
}

export type Session =
  /** A fresh socket that sends without any handshake. */
  | { mode: "pre"; node: number; actions: Action[] }
  /** A handshake as a new peer, then the actions; `close` ends it with that code (or a drop). */
  | { mode: "post"; node: number; peer: PeerIdentity; actions: Action[]; close: number | "terminate" }
  /** Sockets opened and left alone for `holdMs`; `handshaken` of them finish the handshake first. */
  | { mode: "idle"; node: number; sockets: number; handshaken: number; holdMs: number }
  /** The same peer reconnecting `times` times, each stopping at `stopAt`, `parallel` at once. */
  | { mode: "storm"; node: number; peer: PeerIdentity; times: number; parallel: boolean; stopAt: "open" | "hello" | "ready" };

const slot = fc.integer({ min: 0, max: 2 });
const shortText = fc.string({ maxLength: 24 });
const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const name = fc.stringMatching(/^[a-z][a-z0-9_.-]{0,20}$/);
const freshId = fc.stringMatching(/^fz-[0-9a-f]{16}$/);

export const peerIdentity: fc.Arbitrary<PeerIdentity> = fc.oneof(
  { weight: 19, arbitrary: fc.record({ id: freshId, name: fc.stringMatching(/^fz-[a-z0-9]{6}$/) }) },
  // Under a real node's id: the real one is connected at the same time.
  { weight: 1, arbitrary: fc.record({ id: slot.map(realId), name: fc.stringMatching(/^fz-[a-z0-9]{6}$/) }) },
);

const identity = (peer: fc.Arbitrary<PeerIdentity>): fc.Arbitrary<NodeIdentity> =>
  fc.record({
    id: peer.map((p) => p.id),
    name: peer.map((p) => p.name),
    address: fc.constant(DEAD_ADDRESS),
    capabilities: fc.array(name, { maxLength: 4 }),
    tools: fc.array(fc.constantFrom(...LOGIC_NAMES.filter((n) => n !== "nope")), { maxLength: 3 }),
    slots: fc.integer({ min: 0, max: 100_000 }),
  });

const incarnation = fc.oneof(
  fc.integer({ min: 0, max: 5 }),
  fc.constantFrom(2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER),
  fc.nat(),
);

/** A gossip record: about an invented member, or about one of the real nodes. */
const member: fc.Arbitrary<Member> = fc.oneof(
  { weight: 3, arbitrary: identity(peerIdentity) },
  {
    weight: 1,
    arbitrary: slot.chain((s) =>
      identity(fc.constant({ id: realId(s), name: `fuzz-${"abc"[s]}` })).map((m) => ({ ...m, address: realAddress(s) })),
    ),
  },
).chain((m) =>
  fc.record({
    incarnation,
    status: fc.constantFrom("up" as const, "suspect" as const, "down" as const),
    running: fc.oneof(fc.nat(10), fc.nat()),
  }).map((extra) => ({ ...m, ...extra })),
);

const jsonish = fc.jsonValue({ maxDepth: 3 });
/** Bodies near what each handler parses: ids, workflow ids, spawn requests, or anything. */
const body = fc.oneof(
  jsonish,
  fc.record({ id: fc.oneof(shortText, fc.stringMatching(/^wf_[a-z0-9]{6,12}$/)) }),
  fc.record({ workflow_ids: fc.array(fc.stringMatching(/^wf_[a-z0-9]{6,12}$/), { maxLength: 5 }) }),
  fc.record({ logic: fc.constantFrom(...LOGIC_NAMES), input: jsonish, actor: shortText, supervisor: slot.map(realId) }, { requiredKeys: ["logic"] }),
  fc.record({ actor: shortText, event: fc.record({ type: shortText }) }),
  fc.record({ workflow_id: fc.stringMatching(/^wf_[a-z0-9]{6,12}$/), owner: slot.map(realId), owner_name: shortText, epoch: incarnation }),
  fc.record({ leaseMs: fc.integer({ min: -1, max: 10_000_000 }), workflow: fc.option(shortText) }),
  fc.constant(undefined),
);

const errorBody = fc.record(
  { code: fc.oneof(fc.constant("SHOAL_ERR_BAD_FRAME"), shortText), message: shortText, path: fc.array(fc.oneof(shortText, fc.nat())) },
  { requiredKeys: ["code", "message"] },
);

const reqId = fc.oneof(fc.nat(100), fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER));

/** Every frame type with schema-valid fields. */
export const validFrame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ t: fc.constant("hello" as const), v: fc.constant(PROTOCOL_VERSION), cluster: fc.constant("shoal"), node: identity(peerIdentity), nonce: hex64 }),
  fc.record({ t: fc.constant("hello" as const), v: fc.integer(), cluster: fc.string({ minLength: 1, maxLength: 128 }), node: identity(peerIdentity), nonce: hex64, proof: hex64 }),
  fc.record({ t: fc.constant("auth" as const), proof: hex64 }, { requiredKeys: ["t"] }),
  fc.constant({ t: "ready" as const }),
  fc.record({ t: fc.constant("ping" as const), ts: fc.double() }),
  fc.record({ t: fc.constant("pong" as const), ts: fc.double() }),
  fc.record({ t: fc.constant("gossip" as const), members: fc.array(member, { maxLength: 12 }) }),
  fc.record({ t: fc.constant("req" as const), id: reqId, method: fc.oneof(fc.constantFrom(...REQUEST_METHODS), fc.string({ minLength: 1, maxLength: 128 })), body }),
  fc.record({ t: fc.constant("res" as const), id: reqId, body, error: errorBody }, { requiredKeys: ["t", "id"] }),
  fc.record({ t: fc.constant("cast" as const), method: fc.oneof(fc.constantFrom(...CAST_METHODS), fc.string({ minLength: 1, maxLength: 128 })), body }),
  fc.record({ t: fc.constant("error" as const), error: errorBody }),
);

/** A valid frame with one field of the wrong type, a field missing, extra fields, or an unknown `t`. */
const wrongFrame: fc.Arbitrary<unknown> = fc.tuple(validFrame, fc.nat(), fc.anything({ maxDepth: 2 }), fc.string({ maxLength: 12 })).map(([frame, pick, value, key]) => {
  const copy: Record<string, unknown> = { ...frame };
  const keys = Object.keys(copy);
  const target = keys[pick % keys.length] ?? "t";
  switch (pick % 4) {
    case 0:
      copy[target] = value;
      break;
    case 1:
      delete copy[target];
      break;
    case 2:
      copy[key === "" ? "extra" : key] = value;
      break;
    default:
      copy.t = value;
  }
  return copy;
});

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("cut" as const), at: fc.nat() }),
);

const lie: fc.Arbitrary<Action> = fc.record({
  k: fc.constant("lie" as const),
  type: fc.constantFrom<LieType>("str8", "str16", "str32", "bin8", "bin16", "bin32", "array16", "array32", "map16", "map32", "ext32"),
  announced: fc.oneof(fc.constant(2 ** 32 - 1), fc.constant(2 ** 31), fc.integer({ min: 1, max: 2 ** 32 - 1 }), fc.integer({ min: 1, max: 300 })),
  actual: fc.integer({ min: 0, max: 16 }),
  inFrame: fc.boolean(),
});

const deep: fc.Arbitrary<Action> = fc.record({
  k: fc.constant("deep" as const),
  depth: fc.oneof(fc.constant(100_000), fc.integer({ min: 10, max: 2_000 }), fc.integer({ min: 2_000, max: 200_000 })),
  kind: fc.constantFrom("array" as const, "map" as const),
  inFrame: fc.boolean(),
});

/**
 * Frame sizes around the caps: the pre-handshake cap (64 KiB), the frame cap (16 MiB) and past
 * it. `maxHuge` keeps the CI run from sending many 16 MiB frames.
 */
const huge = (maxHuge: number): fc.Arbitrary<Action> =>
  fc.record({
    k: fc.constant("huge" as const),
    bytes: fc.oneof(
      fc.constantFrom(64 * 1024 - 64, 64 * 1024 + 1, 1024 * 1024, 16 * 1024 * 1024 - 1024, 16 * 1024 * 1024 + 1, 17 * 1024 * 1024).filter((n) => n <= maxHuge),
      fc.integer({ min: 1, max: Math.min(maxHuge, 2 * 1024 * 1024) }),
    ),
    as: fc.constantFrom("cast" as const, "raw" as const, "hello" as const),
  });

export interface ActionWeights {
  /** Largest `huge` frame, in bytes. */
  maxHuge: number;
}

/** One thing a fuzzing peer sends. Weights: mostly frames and their mutations; big inputs (deep, huge, flood) about one in 40. */
export const action = (w: ActionWeights): fc.Arbitrary<Action> =>
  fc.oneof(
    { weight: 30, arbitrary: validFrame.map((frame) => ({ k: "frame" as const, frame })) },
    { weight: 24, arbitrary: wrongFrame.map((frame) => ({ k: "frame" as const, frame })) },
    { weight: 30, arbitrary: fc.record({ k: fc.constant("mutated" as const), frame: validFrame, edits: fc.array(edit, { minLength: 1, maxLength: 6 }) }) },
    { weight: 9, arbitrary: lie },
    { weight: 1, arbitrary: deep },
    { weight: 1, arbitrary: huge(w.maxHuge) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant("flood" as const), count: fc.oneof(fc.integer({ min: 100, max: 2_000 }), fc.constant(6_000), fc.constant(10_001)) }) },
    { weight: 9, arbitrary: fc.record({ k: fc.constant("raw" as const), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 64 }) }) },
    { weight: 6, arbitrary: fc.record({ k: fc.constant("text" as const), text: fc.oneof(fc.string({ maxLength: 64 }), validFrame.map((f) => JSON.stringify(f))) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant("pause" as const), ms: fc.integer({ min: 0, max: 50 }) }) },
  );

/** How many messages a session sends (what the frame budget counts). */
export function framesOf(session: Session): number {
  switch (session.mode) {
    case "pre":
    case "post":
      return session.actions.filter((a) => a.k !== "pause").length;
    case "idle":
      return session.handshaken * 2;
    case "storm":
      return session.times * (session.stopAt === "open" ? 0 : session.stopAt === "hello" ? 1 : 2);
  }
}

export interface SessionOptions extends ActionWeights {
  maxActions: number;
  /** Longest an idle session keeps its sockets; past the handshake timeout (5 s) in long runs. */
  maxHoldMs: number;
}

export const session = (o: SessionOptions): fc.Arbitrary<Session> =>
  fc.oneof(
    { weight: 5, arbitrary: fc.record({ mode: fc.constant("pre" as const), node: slot, actions: fc.array(action(o), { minLength: 1, maxLength: 6 }) }) },
    {
      weight: 10,
      arbitrary: fc.record({
        mode: fc.constant("post" as const),
        node: slot,
        peer: peerIdentity,
        // "max": lengths spread up to maxActions, not fast-check's small default, so a session says a lot.
        actions: fc.array(action(o), { minLength: 1, maxLength: o.maxActions, size: "max" }),
        close: fc.constantFrom(1000, 1001, 4000, 3000, "terminate" as const),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        mode: fc.constant("idle" as const),
        node: slot,
        sockets: fc.integer({ min: 1, max: 40 }),
        handshaken: fc.integer({ min: 0, max: 3 }),
        holdMs: fc.integer({ min: 50, max: o.maxHoldMs }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        mode: fc.constant("storm" as const),
        node: slot,
        peer: peerIdentity,
        times: fc.integer({ min: 2, max: 60 }),
        parallel: fc.boolean(),
        stopAt: fc.constantFrom("open" as const, "hello" as const, "ready" as const),
      }),
    },
  );
