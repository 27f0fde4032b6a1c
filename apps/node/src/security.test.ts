import { chmodSync, copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NODE_CONFIG_DEFAULTS, type NodeConfig } from "@shoal/protocol";
import { createCa, issueCertificate } from "@shoal/transport/certificates";
import { beforeAll, describe, expect, it } from "vitest";
import { createTokenKey } from "./auth/apiTokens.js";
import { isLoopback, loadSecurity, loadTls } from "./security.js";

const temp = () => mkdtempSync(join(tmpdir(), "shoal-sec-"));
const config = (extra: Partial<NodeConfig>): NodeConfig => ({ ...NODE_CONFIG_DEFAULTS, name: "edge-01", "data-dir": temp(), ...extra }) as NodeConfig;
const caDir = temp();
let tlsDir: string;
let keyFile: string;

beforeAll(async () => {
  await createCa(caDir);
  tlsDir = temp();
  await issueCertificate({ caDir, name: "edge-01", hosts: [], outDir: tlsDir });
  keyFile = join(temp(), "token.key");
  createTokenKey(keyFile);
});

describe("a node is secure unless told otherwise", () => {
  it("runs open on loopback only", () => {
    expect(["127.0.0.1", "127.3.2.1", "::1", "localhost"].every(isLoopback)).toBe(true);
    expect(["0.0.0.0", "::", "192.168.1.10", "edge-01.local"].some(isLoopback)).toBe(false);
    expect(loadSecurity(config({}))).toEqual({ tls: undefined, tokens: undefined, secret: undefined, webhookSecret: undefined });
  });

  it("refuses an address reachable from the network without TLS and tokens, naming what is missing, unless --insecure", () => {
    expect(() => loadSecurity(config({ host: "0.0.0.0" }))).toThrow(/--tls-dir and --token-key-file/);
    expect(() => loadSecurity(config({ host: "0.0.0.0", "tls-dir": tlsDir }))).toThrow(/give --token-key-file/);
    expect(() => loadSecurity(config({ host: "0.0.0.0" }))).toThrow(expect.objectContaining({ code: "SHOAL_ERR_INSECURE" }));
    expect(loadSecurity(config({ host: "0.0.0.0", insecure: true })).tls).toBeUndefined();
    const secured = loadSecurity(config({ host: "0.0.0.0", "tls-dir": tlsDir, "token-key-file": keyFile }));
    expect(secured.tls?.hosts).toEqual(expect.arrayContaining(["edge-01"]));
    expect(secured.tokens).toBeDefined();
    expect(() => loadSecurity(config({ "revoked-tokens": keyFile }))).toThrow(/give that too/);
  });

  it("refuses key files others can read, a certificate for another name, and one from another CA", async () => {
    const open = temp();
    for (const f of ["ca.crt", "node.crt", "node.key"]) copyFileSync(join(tlsDir, f), join(open, f));
    chmodSync(join(open, "node.key"), 0o644);
    expect(() => loadTls(open, "edge-01")).toThrow(/chmod 600/);
    expect(() => loadTls(tlsDir, "edge-02")).toThrow(/node.crt is for edge-01, this node is --name edge-02/);
    const otherCa = temp();
    await createCa(otherCa);
    const mixed = temp();
    await issueCertificate({ caDir: otherCa, name: "edge-01", hosts: [], outDir: mixed });
    copyFileSync(join(tlsDir, "ca.crt"), join(mixed, "ca.crt"));
    expect(() => loadTls(mixed, "edge-01")).toThrow(/not signed by ca.crt/);
    const secret = join(temp(), "secret");
    writeFileSync(secret, "sesame", { mode: 0o644 });
    expect(() => loadSecurity(config({ "secret-file": secret }))).toThrow(expect.objectContaining({ code: "SHOAL_ERR_BAD_SECRET_FILE" }));
  });
});
