import { z } from "zod";

/** A short lowercase identifier: capability names, tool names. */
export const NameSchema = z.string().min(1).max(64).regex(/^[a-zA-Z0-9_.-]+$/, "letters, digits, '_', '.', '-' only");

/** `host:port` where peers reach the node's HTTP + WebSocket port. */
export const AddressSchema = z.string().min(3).max(300).regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/, "expected host:port");

export const NodeStatusSchema = z.enum(["up", "suspect", "down"]);
export type NodeStatus = z.infer<typeof NodeStatusSchema>;

/** What a node says about itself when it connects: fixed for the life of the process. */
export const NodeIdentitySchema = z.object({
  id: z.string().min(1).max(64),
  name: NameSchema,
  address: AddressSchema,
  capabilities: z.array(NameSchema).max(256),
  tools: z.array(NameSchema).max(1024),
  slots: z.number().int().min(0).max(100_000),
});
export type NodeIdentity = z.infer<typeof NodeIdentitySchema>;

/**
 * The highest incarnation a record may carry: 2^31 - 1, a 32-bit integer on every decoder. Only
 * a node raises its own incarnation, by one per refutation (at most one a gossip round) and per
 * restart, so even a node refuting twice a second for its whole life stays far below it; a node
 * that got there stops raising (and says so in its log) rather than send a record that fails
 * this schema.
 */
export const MAX_INCARNATION = 2 ** 31 - 1;

/**
 * One row of the membership table, as gossiped. `incarnation` is raised only by the node itself,
 * to refute a suspicion of it; `running` is its count of busy slots (its load).
 */
export const MemberSchema = NodeIdentitySchema.extend({
  incarnation: z.number().int().min(0).max(MAX_INCARNATION),
  status: NodeStatusSchema,
  running: z.number().int().min(0),
});
export type Member = z.infer<typeof MemberSchema>;
