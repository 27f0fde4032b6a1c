import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createCa, issueCertificate } from "./certificates.js";
import type { TlsMaterial } from "./peerCertificate.js";
import { eventually, TEST_METHODS, transportPool } from "./testing/fixtures.js";

const pool = transportPool(TEST_METHODS);
afterEach(pool.closeAll);

const temp = () => mkdtempSync(join(tmpdir(), "shoal-mtls-"));
const caDir = temp();
const otherCaDir = temp();

async function material(name: string, ca = caDir): Promise<TlsMaterial> {
  const out = await issueCertificate({ caDir: ca, name, hosts: ["localhost", "127.0.0.1"], outDir: temp() });
  return { ca: readFileSync(out.ca), cert: readFileSync(out.cert), key: readFileSync(out.key) };
}

beforeAll(async () => {
  await createCa(caDir);
  await createCa(otherCaDir);
});

describe("mutual TLS between nodes", () => {
  it("nodes with certificates from the cluster CA connect over wss and talk", async () => {
    const a = await pool.node("a", { tls: await material("a") });
    const b = await pool.node("b", { tls: await material("b") });
    a.transport.handle("who", (_body, from) => from.name);
    const conn = await b.transport.dial(a.address);
    await expect(conn.request("who", null)).resolves.toBe("b");
    await eventually(() => a.transport.connection(b.identity.id)?.isOpen === true);
  });

  it("refuses a peer that claims a name its certificate is not for (4011), both ways", async () => {
    const a = await pool.node("a", { tls: await material("a") });
    const liar = await pool.node("b", { tls: await material("c") });
    await expect(liar.transport.dial(a.address)).rejects.toMatchObject({ code: "SHOAL_ERR_CERT_NAME_MISMATCH" });
    expect(a.transport.connections()).toHaveLength(0);
    // Dialing the liar: its server certificate is for c, not for the b it claims.
    await expect(a.transport.dial(liar.address)).rejects.toMatchObject({ code: "SHOAL_ERR_CERT_NAME_MISMATCH" });
    expect(a.transport.stats.handshakeFailures).toBe(2);
  });

  it("refuses a certificate the cluster CA did not sign, with 401 before any WebSocket, and keeps serving", async () => {
    const a = await pool.node("a", { tls: await material("a") });
    const rogueCert = await material("b", otherCaDir);
    // It trusts our CA, so it gets past our server certificate, but its own is from another CA.
    const rogue = await pool.node("b", { tls: { ...rogueCert, ca: (await material("x")).ca } });
    await expect(rogue.transport.dial(a.address)).rejects.toMatchObject({ code: "SHOAL_ERR_DIAL_FAILED", message: /refused this node: SHOAL_ERR_PEER_CERT_REQUIRED: .*not signed by the cluster CA/ });
    // A node that trusts only the other CA refuses our server certificate itself.
    const stranger = await pool.node("s", { tls: await material("s", otherCaDir) });
    await expect(stranger.transport.dial(a.address)).rejects.toMatchObject({ code: "SHOAL_ERR_DIAL_FAILED", message: /self-signed certificate in certificate chain/ });
    const good = await pool.node("g", { tls: await material("g") });
    await expect(good.transport.dial(a.address)).resolves.toBeDefined();
  });

  it("refuses a peer without a client certificate", async () => {
    const a = await pool.node("a", { tls: await material("a") });
    const ws = new WebSocket(`wss://${a.address}/mesh`, { ca: readFileSync(join(caDir, "ca.crt")), checkServerIdentity: () => false });
    const status = await new Promise<number>((resolve) => {
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.on("error", () => resolve(-1));
      ws.on("open", () => resolve(101));
    });
    expect(status).toBe(401);
  });
});
