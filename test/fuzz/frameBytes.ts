import { Packr } from "msgpackr";
import { type Action, DEAD_ADDRESS, type Edit, type LieType } from "./frameArbs.js";

/** The same MessagePack settings as the node's codec: plain maps, no records. */
const packr = new Packr({ useRecords: false });

/** Real ids and addresses by slot, to fill the placeholders of an input. */
export interface Targets {
  ids: string[];
  addresses: string[];
}

/** Replaces `@@id:N@@` and `@@addr:N@@` anywhere in a value; everything else is kept. */
export function resolve<T>(value: T, targets: Targets): T {
  if (typeof value === "string") {
    return value.replace(/@@(id|addr):(\d)@@/g, (_m, kind: string, n: string) => (kind === "id" ? targets.ids[Number(n)] : targets.addresses[Number(n)]) ?? _m) as T;
  }
  if (Array.isArray(value)) return value.map((v) => resolve(v, targets)) as T;
  if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, targets)])) as T;
  }
  return value;
}

export function pack(value: unknown): Buffer {
  return packr.pack(value);
}

/** fixmap header with the entries `t: "cast", method: "fuzz"` and room for one more key. */
const castPrefix = () => Buffer.concat([Buffer.of(0x83), pack("t"), pack("cast"), pack("method"), pack("fuzz"), pack("body")]);

function applyEdits(bytes: Buffer, edits: Edit[]): Buffer {
  let out = Buffer.from(bytes);
  for (const e of edits) {
    const at = out.length === 0 ? 0 : e.at % (out.length + (e.op === "insert" ? 1 : 0));
    if (e.op === "flip" && out.length > 0) out[at % out.length]! ^= 1 << e.bit;
    else if (e.op === "insert") out = Buffer.concat([out.subarray(0, at), Buffer.of(e.byte), out.subarray(at)]);
    else if (e.op === "delete") out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
    else if (e.op === "cut") out = out.subarray(0, at);
  }
  return out;
}

/** A header of `type` announcing `n` bytes or elements. */
function lyingHeader(type: LieType, n: number): Buffer {
  const b = (size: number, tag: number) => {
    const buf = Buffer.alloc(1 + size);
    buf[0] = tag;
    if (size === 1) buf.writeUInt8(n & 0xff, 1);
    else if (size === 2) buf.writeUInt16BE(n & 0xffff, 1);
    else buf.writeUInt32BE(n >>> 0, 1);
    return buf;
  };
  switch (type) {
    case "str8": return b(1, 0xd9);
    case "str16": return b(2, 0xda);
    case "str32": return b(4, 0xdb);
    case "bin8": return b(1, 0xc4);
    case "bin16": return b(2, 0xc5);
    case "bin32": return b(4, 0xc6);
    case "array16": return b(2, 0xdc);
    case "array32": return b(4, 0xdd);
    case "map16": return b(2, 0xde);
    case "map32": return b(4, 0xdf);
    case "ext32": return Buffer.concat([b(4, 0xc9), Buffer.of(0x01)]);
  }
}

function nested(depth: number, kind: "array" | "map"): Buffer {
  // fixarray of 1, or fixmap of 1 whose key is the empty string: each level is one or two bytes.
  const level = kind === "array" ? Buffer.of(0x91) : Buffer.of(0x81, 0xa0);
  return Buffer.concat([Buffer.alloc(level.length * depth, level), Buffer.of(0xc0)]);
}

/** A gossip frame that lists `count` invented members. */
function flood(count: number): Buffer {
  const members = Array.from({ length: count }, (_, i) => ({
    id: `fz-flood-${i}`,
    name: `fz-flood-${i}`,
    address: DEAD_ADDRESS,
    capabilities: [],
    tools: [],
    slots: 1,
    incarnation: 0,
    status: "up",
    running: 0,
  }));
  return pack({ t: "gossip", members });
}

/** The bytes (or text) one action sends; undefined for a pause. */
export function messageOf(action: Action, targets: Targets): Buffer | string | undefined {
  switch (action.k) {
    case "frame":
      return pack(resolve(action.frame, targets));
    case "mutated":
      return applyEdits(pack(resolve(action.frame, targets)), action.edits);
    case "lie": {
      const filler = Buffer.alloc(action.actual, 0x61);
      const lying = Buffer.concat([lyingHeader(action.type, action.announced), filler]);
      return action.inFrame ? Buffer.concat([castPrefix(), lying]) : lying;
    }
    case "deep":
      return action.inFrame ? Buffer.concat([castPrefix(), nested(action.depth, action.kind)]) : nested(action.depth, action.kind);
    case "huge": {
      if (action.as === "raw") return Buffer.alloc(action.bytes, 0x61);
      const long = "x".repeat(Math.max(0, action.bytes - 64));
      if (action.as === "cast") return pack({ t: "cast", method: "fuzz", body: long });
      return pack({ t: "hello", v: 1, cluster: "shoal", node: { id: long, name: "fz", address: DEAD_ADDRESS, capabilities: [], tools: [], slots: 0 }, nonce: "ab".repeat(32) });
    }
    case "flood":
      return flood(action.count);
    case "raw":
      return Buffer.from(action.bytes);
    case "text":
      return action.text;
    case "pause":
      return undefined;
  }
}
