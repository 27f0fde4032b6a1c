import { mkdtempSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TokenVerifier, createToken, createTokenKey, parseTtl, readTokenKey, scopeCovers, signToken } from "./apiTokens.js";

const dir = () => mkdtempSync(join(tmpdir(), "shoal-tokens-"));

describe("API tokens", () => {
  it("a token made with the cluster key is good on any verifier with that key, with its scope", () => {
    const file = join(dir(), "token.key");
    const key = createTokenKey(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readTokenKey(file).equals(key)).toBe(true);
    const { token, claims } = createToken(key, "submit", 3600);
    expect(token).not.toContain(key.toString("hex"));
    expect(new TokenVerifier(readTokenKey(file)).verify(token)).toEqual(claims);
  });

  it("refuses another key's token, a changed token, an expired one and a revoked one, saying which", () => {
    const key = createTokenKey(join(dir(), "k"));
    const other = createTokenKey(join(dir(), "k"));
    const { token, claims } = createToken(key, "admin", 60, 1_000_000);
    const verifier = (now: number, revoked?: string) => new TokenVerifier(key, revoked, () => now);
    expect(() => new TokenVerifier(other, undefined, () => 1_000_000).verify(token)).toThrow(/signature/);
    // Raise the scope in the payload: the signature no longer matches.
    const [p, payload, sig] = token.split(".");
    const forged = JSON.parse(Buffer.from(payload as string, "base64url").toString());
    forged.scope = "admin";
    forged.exp += 1_000_000;
    expect(() => verifier(1_000_000).verify(`${p}.${Buffer.from(JSON.stringify(forged)).toString("base64url")}.${sig}`)).toThrow(/signature/);
    expect(() => verifier(1_000_000 + 61_000).verify(token)).toThrow(/expired/);
    const revoked = join(dir(), "revoked");
    writeFileSync(revoked, "# revoked tokens\n");
    const v = verifier(1_000_000, revoked);
    expect(v.verify(token).id).toBe(claims.id);
    writeFileSync(revoked, `# lost laptop\n${claims.id}\n`);
    utimesSync(revoked, new Date(), new Date(Date.now() + 5_000)); // a new mtime even within the same tick
    expect(() => v.verify(token)).toThrow(/revoked/);
    expect(() => v.verify("not-a-token")).toThrow(/not a Shoal API token/);
  });

  it("any byte string as a token is refused with SHOAL_ERR_UNAUTHORIZED, never another error", () => {
    const key = createTokenKey(join(dir(), "k"));
    const verifier = new TokenVerifier(key);
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        try {
          verifier.verify(text);
          return false;
        } catch (err) {
          return (err as { code?: string }).code === "SHOAL_ERR_UNAUTHORIZED";
        }
      }),
    );
    // Well-formed but unsigned claims do not pass either.
    expect(() => verifier.verify(signToken(Buffer.alloc(32), { id: "abcdefgh", scope: "admin", iat: 0, exp: 2 ** 40 }))).toThrow(/signature/);
  });

  it("scopes include the ones below them; durations parse or are refused", () => {
    expect([scopeCovers("admin", "submit"), scopeCovers("submit", "read"), scopeCovers("read", "submit"), scopeCovers("submit", "admin")]).toEqual([true, true, false, false]);
    expect([parseTtl("30d"), parseTtl("12h"), parseTtl("90m"), parseTtl("45s")]).toEqual([2_592_000, 43_200, 5_400, 45]);
    for (const bad of ["", "10", "1w", "-1d", "0s", "999999d"]) expect(() => parseTtl(bad)).toThrow(/--ttl/);
  });
});
