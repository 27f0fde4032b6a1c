import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer } from "node:tls";
import { describe, expect, it } from "vitest";
import { createCa, issueCertificate } from "./certificates.js";

const temp = () => mkdtempSync(join(tmpdir(), "shoal-tls-"));

/** A real TLS handshake with both certificates checked against the CA; the SANs the server saw. */
async function mutualTls(server: { cert: string; key: string; ca: string }, client: { cert: string; key: string; ca: string }) {
  const read = (f: string) => readFileSync(f);
  const srv = createServer({ cert: read(server.cert), key: read(server.key), ca: read(server.ca), requestCert: true, rejectUnauthorized: true }, (s) => {
    s.end("ok");
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  // TLS 1.3 ends the client's handshake before the server has checked the client's certificate:
  // a refusal shows on the server's side and as a connection closed without an answer.
  const clientErrors: string[] = [];
  srv.on("tlsClientError", (err) => clientErrors.push(err.message));
  try {
    return await new Promise<{ serverSans: string | undefined; data: string; clientErrors: string[] }>((resolve, reject) => {
      const sock = connect({ host: "127.0.0.1", port, cert: read(client.cert), key: read(client.key), ca: read(client.ca), servername: "localhost" }, () => {
        const serverSans = sock.getPeerCertificate().subjectaltname;
        let data = "";
        sock.on("data", (d) => {
          data += d;
        });
        sock.on("end", () => resolve({ serverSans, data, clientErrors }));
      });
      sock.on("error", reject);
    });
  } finally {
    srv.close();
  }
}

describe("cluster CA and node certificates", () => {
  it("a CA signs node certificates that name the node and pass a mutual TLS handshake", async () => {
    const caDir = temp();
    const ca = await createCa(caDir);
    expect(statSync(ca.key).mode & 0o777).toBe(0o600);
    const a = await issueCertificate({ caDir, name: "edge-01", hosts: ["localhost", "127.0.0.1"], outDir: temp() });
    const b = await issueCertificate({ caDir, name: "gpu-01", hosts: ["localhost"], outDir: temp() });
    const cert = new X509Certificate(readFileSync(a.cert));
    expect(cert.subjectAltName).toBe("DNS:edge-01, DNS:localhost, IP Address:127.0.0.1");
    expect(cert.checkIssued(new X509Certificate(readFileSync(ca.cert)))).toBe(true);
    expect(cert.verify(new X509Certificate(readFileSync(ca.cert)).publicKey)).toBe(true);
    const { serverSans, data, clientErrors } = await mutualTls(a, b);
    expect(serverSans).toContain("DNS:edge-01");
    expect(data).toBe("ok");
    expect(clientErrors).toEqual([]);
  });

  it("a certificate from another CA fails the handshake", async () => {
    const caDir = temp();
    await createCa(caDir);
    const otherCa = temp();
    await createCa(otherCa);
    const good = await issueCertificate({ caDir, name: "edge-01", hosts: ["localhost"], outDir: temp() });
    const rogue = await issueCertificate({ caDir: otherCa, name: "edge-02", hosts: ["localhost"], outDir: temp() });
    const { data, clientErrors } = await mutualTls(good, { ...rogue, ca: good.ca });
    expect(data).toBe("");
    expect(clientErrors.length).toBeGreaterThan(0);
  });

  it("never overwrites a CA or a key", async () => {
    const caDir = temp();
    await createCa(caDir);
    await expect(createCa(caDir)).rejects.toMatchObject({ code: "SHOAL_ERR_BAD_TLS" });
    const out = temp();
    await issueCertificate({ caDir, name: "n1", hosts: [], outDir: out });
    await expect(issueCertificate({ caDir, name: "n1", hosts: [], outDir: out })).rejects.toMatchObject({ code: "SHOAL_ERR_BAD_TLS", message: /exists already/ });
  });
});
