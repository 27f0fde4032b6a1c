import { createCodec } from "@shoal/protocol";

const codec = createCodec();

/**
 * Who dialed a `/mesh` connection, read off the bytes it sent (an `Identify` for the FaultProxy):
 * the name in the hello a Shoal node sends as its first WebSocket frame, right after the HTTP
 * upgrade. `null` for anything else (an API call, a TLS link, a frame that is not a hello).
 */
export function meshDialerName(bytes: Buffer): string | null | undefined {
  if (!"GET /mesh".startsWith(bytes.subarray(0, 9).toString("latin1"))) return null;
  const head = bytes.indexOf("\r\n\r\n");
  if (head < 0) return undefined;
  let at = head + 4;
  if (bytes.length < at + 2) return undefined;
  const masked = ((bytes[at + 1] as number) & 0x80) !== 0;
  let length = (bytes[at + 1] as number) & 0x7f;
  at += 2;
  if (length === 126) {
    if (bytes.length < at + 2) return undefined;
    length = bytes.readUInt16BE(at);
    at += 2;
  } else if (length === 127) {
    if (bytes.length < at + 8) return undefined;
    length = Number(bytes.readBigUInt64BE(at));
    at += 8;
  }
  const mask = masked ? bytes.subarray(at, at + 4) : undefined;
  at += masked ? 4 : 0;
  if (bytes.length < at + length) return undefined;
  const payload = Buffer.from(bytes.subarray(at, at + length));
  if (mask) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (mask[i % 4] as number);
  try {
    const frame = codec.decode(payload);
    return frame.t === "hello" ? frame.node.name : null;
  } catch {
    return null;
  }
}
