import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { ShoalError } from "@shoal/protocol";
import { z } from "zod";

/** What a token lets its bearer do; each scope includes the ones before it. */
export const SCOPES = ["read", "submit", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

const PREFIX = "st1";

const ClaimsSchema = z
  .object({
    /** Token id: what `--revoked-tokens` lists. */
    id: z.string().regex(/^[a-z0-9]{8,32}$/),
    scope: z.enum(SCOPES),
    /** Issued and expires, in seconds since the epoch (wall clock: expiry is a date, not a duration). */
    iat: z.number().int(),
    exp: z.number().int(),
  })
  .strict();
export type TokenClaims = z.infer<typeof ClaimsSchema>;

const b64 = (b: Buffer | string) => Buffer.from(b).toString("base64url");

/**
 * The cluster's token key: 32 random bytes, hex, in a file readable by its owner only. Every
 * node is given the same file; a token signed with it is good on any node of the cluster.
 */
export function readTokenKey(file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch (err) {
    throw new ShoalError("SHOAL_ERR_BAD_TOKEN_KEY", `cannot read token key file ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (!/^[0-9a-f]{64}$/.test(text)) throw new ShoalError("SHOAL_ERR_BAD_TOKEN_KEY", `${file} is not a token key (64 hex digits, as \`shoal token create\` writes)`);
  return Buffer.from(text, "hex");
}

/** Writes a new token key to `file` (which must not exist yet). */
export function createTokenKey(file: string): Buffer {
  const key = randomBytes(32);
  try {
    writeFileSync(file, `${key.toString("hex")}\n`, { flag: "wx", mode: 0o600 });
  } catch (err) {
    throw new ShoalError("SHOAL_ERR_BAD_TOKEN_KEY", `cannot write token key file ${file}: ${(err as Error).message}`, { cause: err });
  }
  return key;
}

export function signToken(key: Buffer, claims: TokenClaims): string {
  const payload = b64(JSON.stringify(claims));
  const sig = createHmac("sha256", key).update(`${PREFIX}.${payload}`).digest();
  return `${PREFIX}.${payload}.${b64(sig)}`;
}

/**
 * A new token: printed once, never stored by Shoal (only its id, if it is revoked). `iat` and
 * `exp` are wall time by design: a token outlives processes and is checked on other machines.
 */
export function createToken(key: Buffer, scope: Scope, ttlSeconds: number, now = Date.now()): { token: string; claims: TokenClaims } {
  const iat = Math.floor(now / 1000);
  const claims: TokenClaims = { id: randomBytes(8).toString("hex"), scope, iat, exp: iat + ttlSeconds };
  return { token: signToken(key, claims), claims };
}

/** `30d`, `12h`, `90m`, `45s`: a token's lifetime in seconds. */
export function parseTtl(text: string): number {
  const m = /^(\d{1,6})([smhd])$/.exec(text.trim());
  if (!m) throw new ShoalError("SHOAL_ERR_BAD_FLAG", `--ttl ${text}: expected a number and a unit, e.g. 30d, 12h, 90m, 45s`);
  const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as "s" | "m" | "h" | "d"];
  const seconds = Number(m[1]) * unit;
  if (seconds < 1 || seconds > 5 * 365 * 86_400) throw new ShoalError("SHOAL_ERR_BAD_FLAG", `--ttl ${text}: from 1s to 5 years`);
  return seconds;
}

/** Is `granted` enough for `needed`? admin > submit > read. */
export function scopeCovers(granted: Scope, needed: Scope): boolean {
  return SCOPES.indexOf(granted) >= SCOPES.indexOf(needed);
}

/**
 * Checks bearer tokens: the signature with the cluster key, the expiry, and the revocation list
 * (a file of token ids, one per line, `#` comments; read again when it changes, so revoking needs
 * no restart). Throws SHOAL_ERR_UNAUTHORIZED with the reason.
 */
export class TokenVerifier {
  private revoked = new Set<string>();
  private revokedMtimeMs = -1;

  constructor(
    private readonly key: Buffer,
    private readonly revokedFile?: string,
    /** Wall clock by design (see `createToken`). */
    private readonly now: () => number = Date.now,
  ) {
    this.reloadRevoked();
  }

  verify(token: string): TokenClaims {
    const parts = token.split(".");
    if (parts.length !== 3 || parts[0] !== PREFIX) throw unauthorized("the bearer token is not a Shoal API token");
    const [, payload = "", sig = ""] = parts;
    const expected = createHmac("sha256", this.key).update(`${PREFIX}.${payload}`).digest();
    const given = Buffer.from(sig, "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw unauthorized("the token's signature does not match this cluster's token key");
    let claims: TokenClaims;
    try {
      claims = ClaimsSchema.parse(JSON.parse(Buffer.from(payload, "base64url").toString("utf8")));
    } catch {
      throw unauthorized("the token's claims are malformed");
    }
    if (claims.exp * 1000 <= this.now()) throw unauthorized(`token ${claims.id} expired at ${new Date(claims.exp * 1000).toISOString()}`);
    this.reloadRevoked();
    if (this.revoked.has(claims.id)) throw unauthorized(`token ${claims.id} is revoked`);
    return claims;
  }

  private reloadRevoked(): void {
    if (!this.revokedFile) return;
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.revokedFile).mtimeMs;
    } catch (err) {
      throw new ShoalError("SHOAL_ERR_BAD_TOKEN_KEY", `cannot read --revoked-tokens ${this.revokedFile}: ${(err as Error).message}`, { cause: err });
    }
    if (mtimeMs === this.revokedMtimeMs) return;
    this.revokedMtimeMs = mtimeMs;
    const ids = readFileSync(this.revokedFile, "utf8")
      .split("\n")
      .map((l) => l.replace(/#.*/, "").trim())
      .filter(Boolean);
    this.revoked = new Set(ids);
  }
}

function unauthorized(message: string): ShoalError {
  return new ShoalError("SHOAL_ERR_UNAUTHORIZED", message);
}
