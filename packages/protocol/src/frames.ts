import { z } from "zod";
import { ErrorBodySchema } from "./errorBody.js";
import { MemberSchema, NodeIdentitySchema } from "./member.js";

const Hex = z.string().regex(/^[0-9a-f]{64}$/, "64 hex digits");

/** Opens the handshake, from both sides. `proof` is only in the answer of the accepting side. */
export const HelloFrameSchema = z.object({
  t: z.literal("hello"),
  v: z.number().int(),
  cluster: z.string().min(1).max(128),
  node: NodeIdentitySchema,
  nonce: Hex,
  proof: Hex.optional(),
});

/** The dialing side's proof that it knows the cluster secret. */
export const AuthFrameSchema = z.object({ t: z.literal("auth"), proof: Hex.optional() });

/** The accepting side has checked everything; the connection is open for traffic. */
export const ReadyFrameSchema = z.object({ t: z.literal("ready") });

export const PingFrameSchema = z.object({ t: z.literal("ping"), ts: z.number() });
export const PongFrameSchema = z.object({ t: z.literal("pong"), ts: z.number() });

/** The sender's membership table, or the part of it that changed. */
export const GossipFrameSchema = z.object({ t: z.literal("gossip"), members: z.array(MemberSchema).max(10_000) });

export const RequestFrameSchema = z.object({
  t: z.literal("req"),
  id: z.number().int().min(0),
  method: z.string().min(1).max(128),
  body: z.unknown(),
});

/** Answers the request with the same `id`: either `body` or `error`. */
export const ResponseFrameSchema = z.object({
  t: z.literal("res"),
  id: z.number().int().min(0),
  body: z.unknown().optional(),
  error: ErrorBodySchema.optional(),
});

/** A one-way message to a handler by method name; nothing answers it. */
export const CastFrameSchema = z.object({
  t: z.literal("cast"),
  method: z.string().min(1).max(128),
  body: z.unknown(),
});

/** Tells the peer that a frame it sent was refused, and why. The connection stays open. */
export const ErrorFrameSchema = z.object({ t: z.literal("error"), error: ErrorBodySchema });

export const FrameSchema = z.discriminatedUnion("t", [
  HelloFrameSchema,
  AuthFrameSchema,
  ReadyFrameSchema,
  PingFrameSchema,
  PongFrameSchema,
  GossipFrameSchema,
  RequestFrameSchema,
  ResponseFrameSchema,
  CastFrameSchema,
  ErrorFrameSchema,
]);

export type Frame = z.infer<typeof FrameSchema>;
export type FrameType = Frame["t"];
export type FrameOf<T extends FrameType> = Extract<Frame, { t: T }>;
export type HelloFrame = FrameOf<"hello">;
export type RequestFrame = FrameOf<"req">;
export type ResponseFrame = FrameOf<"res">;
export type GossipFrame = FrameOf<"gossip">;
export type CastFrame = FrameOf<"cast">;
