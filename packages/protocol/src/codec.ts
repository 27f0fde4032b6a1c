import { Packr } from "msgpackr";
import { z } from "zod";
import { type Frame, FrameSchema } from "./frames.js";
import { ShoalError } from "./ShoalError.js";
import type { ProtocolErrorCode } from "./errors.js";
import { DEFAULT_MAX_FRAME_BYTES } from "./version.js";

export interface CodecOptions {
  /** Largest encoded frame, in bytes, accepted on encode and decode. */
  maxFrameBytes?: number;
}

export interface Codec {
  readonly maxFrameBytes: number;
  /** MessagePack bytes of a frame; throws SHOAL_ERR_FRAME_TOO_LARGE past the limit. */
  encode(frame: Frame): Uint8Array;
  /** A schema-checked frame; throws only ShoalError with a protocol code. */
  decode(bytes: Uint8Array): Frame;
}

/** Turns zod issues into one line that names the path, e.g. `node.slots: expected number`. */
export function describeZodError(error: z.ZodError): { message: string; path: (string | number)[] } {
  const first = error.issues[0];
  const path = (first?.path ?? []).map((p) => (typeof p === "symbol" ? String(p) : p));
  const where = path.length > 0 ? `${path.join(".")}: ` : "";
  return { message: `${where}${first?.message ?? "invalid"}`, path };
}

/**
 * A ShoalError for a value that failed a zod schema somewhere past the codec (a handler checking
 * a request body): the sender's mistake, to be answered as such, not a bug to log with a stack.
 */
export function schemaErrorOf(err: unknown, what = "request body"): ShoalError | undefined {
  if (!(err instanceof z.ZodError)) return undefined;
  const { message, path } = describeZodError(err);
  return new ShoalError("SHOAL_ERR_BAD_SCHEMA", `${what}: ${message}`, { path });
}

export function createCodec(options: CodecOptions = {}): Codec {
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  // Plain maps and numbers only: records and BigInt would make frames depend on codec state
  // shared between two ends that never agreed on it.
  const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "number", moreTypes: false });
  const fail = (code: ProtocolErrorCode, message: string, extra?: { cause?: unknown; path?: (string | number)[] }) =>
    new ShoalError(code, message, extra);

  return {
    maxFrameBytes,
    encode(frame) {
      const bytes = packr.pack(frame);
      if (bytes.length > maxFrameBytes) {
        throw fail("SHOAL_ERR_FRAME_TOO_LARGE", `frame of ${bytes.length} bytes is over the ${maxFrameBytes}-byte limit`);
      }
      return bytes;
    },
    decode(bytes) {
      if (bytes.length > maxFrameBytes) {
        throw fail("SHOAL_ERR_FRAME_TOO_LARGE", `frame of ${bytes.length} bytes is over the ${maxFrameBytes}-byte limit`);
      }
      let value: unknown;
      try {
        value = packr.unpack(bytes);
      } catch (cause) {
        throw fail("SHOAL_ERR_BAD_FRAME", `not a MessagePack frame: ${(cause as Error).message}`, { cause });
      }
      const parsed = FrameSchema.safeParse(value);
      if (!parsed.success) {
        const { message, path } = describeZodError(parsed.error);
        throw fail("SHOAL_ERR_BAD_SCHEMA", `frame does not match its schema: ${message}`, { path });
      }
      return parsed.data;
    },
  };
}
