import { z } from "zod";

/**
 * Kinds of address a node's outgoing requests for callers (`http_request`, webhooks) are checked
 * against. `private` (the LAN: cameras and boxes next to the node) is reachable by default, since
 * reaching them is what an edge mesh is for; the others are refused unless `--egress-allow` names
 * them, because they reach the node's own box or its cloud's credentials, not the network.
 */
export const EGRESS_CLASSES = {
  loopback: { cidrs: ["127.0.0.0/8", "::1/128"], refused: true, doc: "this box (127.0.0.0/8, ::1)" },
  unspecified: { cidrs: ["0.0.0.0/8", "::/128"], refused: true, doc: "0.0.0.0/8 and ::, which connect to this box" },
  // Before link-local, which holds most of it: a refusal names the most specific class first.
  metadata: {
    cidrs: ["169.254.169.254/32", "169.254.170.2/32", "fd00:ec2::254/128", "100.100.100.200/32", "168.63.129.16/32"],
    names: ["metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"],
    refused: true,
    doc: "cloud metadata services (AWS, GCP, Azure, Alibaba, ECS): they hand out the machine's credentials",
  },
  "link-local": { cidrs: ["169.254.0.0/16", "fe80::/10"], refused: true, doc: "link-local (169.254.0.0/16, fe80::/10)" },
  private: {
    cidrs: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"],
    refused: false,
    doc: "the LAN (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7): reachable unless --egress-deny private",
  },
} as const;

export type EgressClass = keyof typeof EGRESS_CLASSES;

/** Why an address or host name is refused, and the setting that would let it through. */
export interface EgressRefusal {
  /** The address (canonical form) or host name refused. */
  address: string;
  /** e.g. "a loopback address", "in --egress-deny 10.0.0.0/8". */
  reason: string;
  /** The setting that would allow it, e.g. "--egress-allow loopback". */
  allowWith: string;
}

/** A compiled pair of `--egress-allow` and `--egress-deny` lists. */
export interface EgressRules {
  /** An IP address in any textual form (IPv4 dotted, integer, hex or octal; IPv6, IPv4-mapped); undefined if allowed. */
  checkAddress(address: string): EgressRefusal | undefined;
  /** A host name (not an address): refused if it names a metadata service, before any DNS. */
  checkName(host: string): EgressRefusal | undefined;
}

interface Range {
  base: bigint;
  bits: number;
  text: string;
}

const MAPPED = 0xffffn << 32n;
const FULL = (1n << 128n) - 1n;

/** Parses IPv4 the way `inet_aton` and the URL standard do: 1-4 parts, each decimal, 0x hex or 0 octal. */
function parseIPv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length > 1 && parts.at(-1) === "") parts.pop();
  if (parts.length < 1 || parts.length > 4) return undefined;
  const values: number[] = [];
  for (const part of parts) {
    let n: number;
    if (/^0x[0-9a-f]*$/i.test(part)) n = part.length === 2 ? 0 : Number.parseInt(part.slice(2), 16);
    else if (/^0[0-7]+$/.test(part)) n = Number.parseInt(part.slice(1), 8);
    else if (/^(0|[1-9][0-9]*)$/.test(part)) n = Number(part);
    else return undefined;
    values.push(n);
  }
  const last = values.pop() as number;
  if (values.some((v) => v > 255) || last >= 256 ** (4 - values.length)) return undefined;
  return values.reduce((acc, v, i) => acc + v * 256 ** (3 - i), 0) + last;
}

/** Parses IPv6 (a `%zone` suffix dropped, a dotted IPv4 tail allowed) into 128 bits. */
function parseIPv6(text: string): bigint | undefined {
  const addr = text.replace(/%.*$/, "");
  const halves = addr.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string | undefined): number[] | undefined => {
    if (!half) return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (const [i, part] of parts.entries()) {
      if (i === parts.length - 1 && part.includes(".")) {
        if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(part)) return undefined;
        const v4 = parseIPv4(part.split(".").map((p) => String(Number(p))).join("."));
        if (v4 === undefined) return undefined;
        out.push(Math.floor(v4 / 65536), v4 % 65536);
      } else if (/^[0-9a-f]{1,4}$/i.test(part)) out.push(Number.parseInt(part, 16));
      else return undefined;
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail].reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

const unbracket = (text: string) => (text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text);

/**
 * An address as 128 bits, IPv4 as IPv4-mapped IPv6; undefined if `text` is not an address. The
 * forms that carry an IPv4 address inside IPv6 (compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`,
 * SIIT `::ffff:0:a.b.c.d`) count as that IPv4 address, so `::ffff:127.0.0.1` is loopback.
 */
function parseAddress(text: string): bigint | undefined {
  const bare = unbracket(text);
  if (bare.includes(":")) {
    const v6 = parseIPv6(bare);
    if (v6 === undefined) return undefined;
    const high = v6 >> 32n;
    const low = v6 & 0xffffffffn;
    const embedsV4 = high === 0xffffn || high === 0xffff0000n || high === 0x64ff9bn << 64n || (high === 0n && low > 1n);
    return embedsV4 ? MAPPED | low : v6;
  }
  const v4 = parseIPv4(bare);
  return v4 === undefined ? undefined : MAPPED | BigInt(v4);
}

function formatAddress(a: bigint): string {
  if (a >> 32n === 0xffffn) return [24n, 16n, 8n, 0n].map((s) => String((a >> s) & 0xffn)).join(".");
  const groups = Array.from({ length: 8 }, (_, i) => ((a >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  // The longest run of zero groups becomes "::".
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; i++) {
    let len = 0;
    while (i + len < 8 && groups[i + len] === "0") len++;
    if (len > best.len) best = { at: i, len };
  }
  if (best.at < 0) return groups.join(":");
  return `${groups.slice(0, best.at).join(":")}::${groups.slice(best.at + best.len).join(":")}`;
}

/** `a.b.c.d[/n]` (dotted quad only: `10/8` would be 0.0.0.10) or `v6[/n]`, as a range of the 128-bit space. */
function parseRange(text: string): Range | undefined {
  const [addr = "", prefix, extra] = text.split("/");
  if (extra !== undefined || (prefix !== undefined && !/^\d{1,3}$/.test(prefix))) return undefined;
  const v6 = addr.includes(":");
  let base: bigint | undefined;
  if (v6) base = parseIPv6(unbracket(addr));
  else if (/^\d{1,3}(\.\d{1,3}){3}$/.test(addr)) {
    const v4 = parseIPv4(addr.split(".").map((p) => String(Number(p))).join("."));
    base = v4 === undefined ? undefined : MAPPED | BigInt(v4);
  }
  if (base === undefined) return undefined;
  const max = v6 ? 128 : 32;
  const n = prefix === undefined ? max : Number(prefix);
  if (n > max) return undefined;
  const bits = v6 ? n : 96 + n;
  const mask = bits === 0 ? 0n : (FULL << BigInt(128 - bits)) & FULL;
  return { base: base & mask, bits, text };
}

const contains = (r: Range, a: bigint) => (r.bits === 0 ? true : a >> BigInt(128 - r.bits) === r.base >> BigInt(128 - r.bits));

const CLASS_RANGES = Object.fromEntries(
  Object.entries(EGRESS_CLASSES).map(([name, c]) => [name, c.cidrs.map((cidr) => parseRange(cidr) as Range)]),
) as Record<EgressClass, Range[]>;

const REFUSED_CLASSES = (Object.keys(EGRESS_CLASSES) as EgressClass[]).filter((name) => EGRESS_CLASSES[name].refused);

const isClass = (rule: string): rule is EgressClass => Object.hasOwn(EGRESS_CLASSES, rule);

/** One entry of `--egress-allow` / `--egress-deny`: a class name (`loopback`, `private`, ...), an address, or a CIDR. */
export const EgressRuleSchema = z
  .string()
  .max(64)
  .refine((rule) => isClass(rule) || parseRange(rule) !== undefined, {
    message: `an egress rule is one of ${Object.keys(EGRESS_CLASSES).join(", ")}, an IP address or a CIDR (10.0.0.0/8, fd00::/8)`,
  });

const ARTICLE: Record<EgressClass, string> = {
  loopback: "a loopback address",
  unspecified: "an unspecified address",
  "link-local": "a link-local address",
  metadata: "a cloud metadata address",
  private: "a private (LAN) address",
};

/**
 * Compiles the node's egress settings. A deny rule wins over everything; otherwise an address in
 * a class refused by default passes only if each such class it is in is allowed by name or an
 * allow CIDR covers it (so `--egress-allow link-local` still refuses 169.254.169.254, which is
 * also metadata). Everything else (the LAN, the internet) passes.
 */
export function egressRules(allow: readonly string[] = [], deny: readonly string[] = []): EgressRules {
  const allowedClasses = new Set(allow.filter(isClass));
  const allowRanges = allow.filter((r) => !isClass(r)).map((r) => parseRange(r) as Range | undefined);
  const denyRanges = deny.flatMap((rule) => (isClass(rule) ? CLASS_RANGES[rule].map((r) => ({ ...r, text: rule })) : [parseRange(rule)]));
  if ([...allowRanges, ...denyRanges].some((r) => r === undefined)) {
    throw new TypeError(`bad egress rule in ${JSON.stringify({ allow, deny })}`);
  }
  const deniedNames = new Set<string>(deny.includes("metadata") || !allowedClasses.has("metadata") ? EGRESS_CLASSES.metadata.names : []);
  return {
    checkAddress(text) {
      const a = parseAddress(text);
      if (a === undefined) return { address: text, reason: "not an IP address", allowWith: "a valid address" };
      const address = formatAddress(a);
      const denied = denyRanges.find((r) => r && contains(r, a));
      if (denied) return { address, reason: `in --egress-deny ${denied.text}`, allowWith: `--egress-deny without ${denied.text}` };
      if (allowRanges.some((r) => r && contains(r, a))) return undefined;
      const refusing = REFUSED_CLASSES.filter((name) => !allowedClasses.has(name) && CLASS_RANGES[name].some((r) => contains(r, a)));
      const [first] = refusing;
      if (first === undefined) return undefined;
      // Every class that refuses it, so the setting named is one that does let it through.
      return { address, reason: ARTICLE[first], allowWith: `--egress-allow ${refusing.join(",")} (or --egress-allow ${address}${a >> 32n === 0xffffn ? "/32" : "/128"})` };
    },
    checkName(host) {
      const name = host.toLowerCase().replace(/\.$/, "");
      if (!deniedNames.has(name)) return undefined;
      return { address: name, reason: "the name of a cloud metadata service", allowWith: "--egress-allow metadata" };
    },
  };
}

/** Whether `text` is an IP address in any textual form the rules read (so it is checked, never looked up). */
export const isIpAddress = (text: string): boolean => parseAddress(text) !== undefined;
