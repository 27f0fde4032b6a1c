// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { ShoalError } from "@shoal/protocol";
import * as x509 from "@peculiar/x509";

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

// Node has WebCrypto but not the DOM types x509 names it by.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);

/** ECDSA P-256: small keys and fast handshakes on small boxes, supported by every TLS stack. */
const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const SIGNING = { name: "ECDSA", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;

/** The files of a `--tls-dir`, and of a CA dir. */
export const TLS_FILES = { ca: "ca.crt", caKey: "ca.key", cert: "node.crt", key: "node.key" } as const;

async function exportKey(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new ShoalError("SHOAL_ERR_BAD_TLS", "the CA key file holds no PEM block");
  return webcrypto.subtle.importKey("pkcs8", der, KEY_ALGORITHM, false, ["sign"]);
}

function writeNew(file: string, text: string, mode: number): void {
  try {
    writeFileSync(file, text, { flag: "wx", mode });
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === "EEXIST" ? "it exists already; move it away first" : (err as Error).message;
    throw new ShoalError("SHOAL_ERR_BAD_TLS", `cannot write ${file}: ${why}`, { cause: err });
  }
}

function generateKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]);
}

/** `shoal ca init`: a new cluster CA in `dir` (ca.crt, and ca.key readable by its owner only). */
export async function createCa(dir: string, options: { name?: string; days?: number } = {}): Promise<{ cert: string; key: string }> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certFile = join(dir, TLS_FILES.ca);
  const keyFile = join(dir, TLS_FILES.caKey);
  if (existsSync(certFile) || existsSync(keyFile)) {
    throw new ShoalError("SHOAL_ERR_BAD_TLS", `${dir} holds a CA already (${TLS_FILES.ca}/${TLS_FILES.caKey}); a new one would orphan every certificate it signed`);
  }
  const keys = await generateKeys();
  // Wall time by design: X.509 validity is read against each verifier's wall clock.
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${options.name ?? "shoal cluster CA"}`,
    keys,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + (options.days ?? 3650) * DAY_MS),
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  writeNew(keyFile, await exportKey(keys.privateKey), 0o600);
  writeNew(certFile, cert.toString("pem"), 0o644);
  return { cert: certFile, key: keyFile };
}

/**
 * `shoal cert issue`: a node certificate signed by the CA in `caDir`, for both ends of a TLS
 * link (server and client auth). The node's name is its first SAN entry: that is what peers
 * check against the name it claims. `hosts` are the names and addresses the node is dialed at.
 */
export async function issueCertificate(options: { caDir: string; name: string; hosts: string[]; outDir: string; days?: number }): Promise<{ cert: string; key: string; ca: string }> {
  const caCertPem = readTls(join(options.caDir, TLS_FILES.ca));
  const caKey = await importKey(readTls(join(options.caDir, TLS_FILES.caKey)));
  const caCert = new x509.X509Certificate(caCertPem);
  const keys = await generateKeys();
  const names = [...new Set([options.name, ...options.hosts])];
  const now = Date.now(); // wall time by design, as for the CA
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${options.name}`,
    issuer: caCert.subject,
    publicKey: keys.publicKey,
    signingKey: caKey,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + (options.days ?? 825) * DAY_MS),
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: isIP(n) ? "ip" : "dns", value: n }))),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  mkdirSync(options.outDir, { recursive: true, mode: 0o700 });
  const out = { cert: join(options.outDir, TLS_FILES.cert), key: join(options.outDir, TLS_FILES.key), ca: join(options.outDir, TLS_FILES.ca) };
  writeNew(out.key, await exportKey(keys.privateKey), 0o600);
  writeNew(out.cert, cert.toString("pem"), 0o644);
  if (!existsSync(out.ca)) writeNew(out.ca, caCertPem, 0o644);
  return out;
}

function readTls(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new ShoalError("SHOAL_ERR_BAD_TLS", `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}
