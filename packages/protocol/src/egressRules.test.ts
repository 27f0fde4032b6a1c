import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EgressRuleSchema, egressRules, isIpAddress } from "./egressRules.js";

const rules = egressRules();

/** Every textual form of an IPv4 address that inet_aton, the URL standard or IPv6 give it. */
function v4Forms(a: number): string[] {
  const b = [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255];
  const hex16 = (n: number) => n.toString(16);
  const mappedTail = `${hex16((b[0] as number) * 256 + (b[1] as number))}:${hex16((b[2] as number) * 256 + (b[3] as number))}`;
  return [
    b.join("."),
    `${b.join(".")}.`,
    String(a),
    `0x${a.toString(16)}`,
    `0${a.toString(8)}`,
    b.map((x) => `0x${x.toString(16)}`).join("."),
    b.map((x) => `0${x.toString(8)}`).join("."),
    `${b[0]}.${a & 0xffffff}`,
    `${b[0]}.${b[1]}.${a & 0xffff}`,
    `::ffff:${b.join(".")}`,
    `::ffff:${mappedTail}`,
    `[::ffff:${mappedTail}]`,
    `0:0:0:0:0:FFFF:${mappedTail}`,
    `::ffff:0:${mappedTail}`,
    `64:ff9b::${mappedTail}`,
  ];
}

const v4In = (cidr: string) => {
  const [base, bits] = cidr.split("/") as [string, string];
  const start = base.split(".").reduce((acc, x) => acc * 256 + Number(x), 0);
  const size = 2 ** (32 - Number(bits));
  return fc.integer({ min: 0, max: size - 1 }).map((off) => start + off);
};

describe("egressRules", () => {
  it("refuses every loopback, unspecified, link-local and metadata IPv4 address in each of its textual forms, as given and as the URL parser leaves it", () => {
    const refused = fc.oneof(v4In("127.0.0.0/8"), v4In("0.0.0.0/8"), v4In("169.254.0.0/16"), fc.constantFrom(0xa9fea9fe, 0x646464c8, 0xa83f8110));
    fc.assert(
      fc.property(refused, (a) => {
        for (const form of v4Forms(a)) {
          expect(rules.checkAddress(form), form).toBeDefined();
          const host = new URL(`http://${form.includes(":") && !form.startsWith("[") ? `[${form}]` : form}/`).hostname;
          expect(rules.checkAddress(host), `${form} -> ${host}`).toBeDefined();
        }
      }),
      { numRuns: 500 },
    );
  });

  it("refuses ::1, ::, fe80::/10 and fd00:ec2::254 however they are written", () => {
    const group = fc.integer({ min: 0, max: 0xffff }).map((g) => g.toString(16));
    const linkLocal = fc.tuple(fc.integer({ min: 0xfe80, max: 0xfebf }), fc.array(group, { minLength: 7, maxLength: 7 })).map(([g, rest]) => [g.toString(16), ...rest]);
    const fixed = fc.constantFrom(["0", "0", "0", "0", "0", "0", "0", "1"], ["0", "0", "0", "0", "0", "0", "0", "0"], ["fd00", "ec2", "0", "0", "0", "0", "0", "254"]);
    fc.assert(
      fc.property(fc.oneof(linkLocal, fixed), fc.boolean(), (groups, upper) => {
        const full = groups.join(":");
        const padded = groups.map((g) => g.padStart(4, "0")).join(":");
        for (const form of [full, padded, `[${full}]`, upper ? full.toUpperCase() : full, new URL(`http://[${full}]/`).hostname]) {
          expect(rules.checkAddress(form), form).toBeDefined();
        }
      }),
    );
  });

  it("lets the LAN and the internet through by default", () => {
    for (const a of ["10.1.2.3", "172.16.0.9", "192.168.1.20", "100.64.0.1", "fc00::1", "fd12:3456::1", "8.8.8.8", "2001:db8::1", "::ffff:192.168.1.20"]) {
      expect(rules.checkAddress(a), a).toBeUndefined();
    }
  });

  it("names the address, why, and the setting that would allow it", () => {
    expect(rules.checkAddress("2130706433")).toEqual({ address: "127.0.0.1", reason: "a loopback address", allowWith: "--egress-allow loopback (or --egress-allow 127.0.0.1/32)" });
    expect(rules.checkAddress("[::ffff:a9fe:a9fe]")).toEqual({
      address: "169.254.169.254",
      reason: "a cloud metadata address",
      allowWith: "--egress-allow metadata,link-local (or --egress-allow 169.254.169.254/32)",
    });
    expect(rules.checkAddress("169.254.1.1")?.allowWith).toBe("--egress-allow link-local (or --egress-allow 169.254.1.1/32)");
    expect(rules.checkAddress("fe80::1%eth0")?.address).toBe("fe80::1");
  });

  it("allows a class by name or a range by CIDR; link-local allowed still refuses metadata", () => {
    const lenient = egressRules(["loopback", "link-local", "fe80::/16"]);
    expect(lenient.checkAddress("127.0.0.1")).toBeUndefined();
    expect(lenient.checkAddress("::1")).toBeUndefined();
    expect(lenient.checkAddress("169.254.1.1")).toBeUndefined();
    expect(lenient.checkAddress("169.254.169.254")?.reason).toBe("a cloud metadata address");
    expect(lenient.checkAddress("0.0.0.0")?.reason).toBe("an unspecified address");
    const one = egressRules(["127.0.0.2/32"]);
    expect(one.checkAddress("127.0.0.2")).toBeUndefined();
    expect(one.checkAddress("127.0.0.1")).toBeDefined();
    expect(egressRules(["metadata"]).checkAddress("169.254.169.254")?.reason).toBe("a link-local address");
    // What a refusal names as the way through does let it through.
    for (const address of ["169.254.169.254", "127.0.0.1", "0.0.0.0", "fe80::1", "fd00:ec2::254"]) {
      const allowWith = rules.checkAddress(address)?.allowWith ?? "";
      const [, classes = "", cidr = ""] = /^--egress-allow (\S+) \(or --egress-allow (\S+)\)$/.exec(allowWith) ?? [];
      expect(egressRules(classes.split(",")).checkAddress(address), allowWith).toBeUndefined();
      expect(egressRules([cidr]).checkAddress(address), allowWith).toBeUndefined();
    }
  });

  it("deny wins: private refuses the LAN, a CIDR refuses its range even when allowed", () => {
    const strict = egressRules(["loopback"], ["private", "8.8.0.0/16", "127.0.0.5"]);
    expect(strict.checkAddress("192.168.1.1")).toEqual({ address: "192.168.1.1", reason: "in --egress-deny private", allowWith: "--egress-deny without private" });
    expect(strict.checkAddress("8.8.4.4")?.reason).toBe("in --egress-deny 8.8.0.0/16");
    expect(strict.checkAddress("127.0.0.5")).toBeDefined();
    expect(strict.checkAddress("127.0.0.6")).toBeUndefined();
    expect(strict.checkAddress("1.1.1.1")).toBeUndefined();
  });

  it("refuses the names of metadata services unless metadata is allowed", () => {
    expect(rules.checkName("metadata.google.internal.")?.allowWith).toBe("--egress-allow metadata");
    expect(rules.checkName("METADATA.goog")).toBeDefined();
    expect(rules.checkName("camera-1.lan")).toBeUndefined();
    expect(egressRules(["metadata"]).checkName("metadata.google.internal")).toBeUndefined();
  });

  it("tells addresses from host names the way the URL parser does", () => {
    for (const host of ["2130706433", "0x7f.1", "127.1", "::1", "[::1]"]) expect(isIpAddress(host), host).toBe(true);
    for (const host of ["localhost", "camera-1", "1.2.3.4.5", "0x7g.1", "256.1.1.1", "example.com", ""]) expect(isIpAddress(host), host).toBe(false);
    expect(new URL("http://2130706433/").hostname).toBe("127.0.0.1");
    expect(new URL("http://0x7f.1/").hostname).toBe("127.0.0.1");
    expect(new URL("http://0177.0.0.01/").hostname).toBe("127.0.0.1");
    expect(new URL("http://[::ffff:127.0.0.1]/").hostname).toBe("[::ffff:7f00:1]");
  });

  it("takes class names, addresses and CIDRs as rules, nothing else", () => {
    for (const rule of ["loopback", "private", "metadata", "10.0.0.0/8", "127.0.0.1", "fd00::/8", "::1/128"]) expect(EgressRuleSchema.safeParse(rule).success, rule).toBe(true);
    for (const rule of ["10/8", "bogus", "1.2.3.4/33", "::1/129", "1.2.3.4/8/1", "0x7f.1/32", ""]) expect(EgressRuleSchema.safeParse(rule).success, rule).toBe(false);
  });
});
