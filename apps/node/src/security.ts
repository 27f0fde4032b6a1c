import { X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { type NodeConfig, ShoalError } from "@shoal/protocol";
import type { TlsMaterial } from "@shoal/transport";
import { TokenVerifier, readTokenKey } from "./auth/apiTokens.js";
import { readSecretFile } from "./config.js";

/** What secures a node: mutual TLS, API tokens, the membership key for plain links. */
export interface NodeSecurity {
  tls: (TlsMaterial & { hosts: string[] }) | undefined;
  tokens: TokenVerifier | undefined;
  secret: string | undefined;
  /** Key of the webhooks' Shoal-Signature header (`--webhook-secret-file`). */
  webhookSecret: string | undefined;
}

/** Loopback names and addresses, where a node may run open (a demo, tests, one box). */
export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}

/**
 * Reads the node's keys and refuses to start a node that would be open to its network: on any
 * host but loopback it needs TLS and API tokens, unless told `--insecure`. Key files readable by
 * others are refused, as ssh refuses them: a key that anyone on the box can read is no key.
 */
export function loadSecurity(config: NodeConfig): NodeSecurity {
  if (!isLoopback(config.host) && !config.insecure) {
    const missing = [config["tls-dir"] ? "" : "--tls-dir", config["token-key-file"] ? "" : "--token-key-file"].filter(Boolean);
    if (missing.length > 0) {
      throw new ShoalError(
        "SHOAL_ERR_INSECURE",
        `--host ${config.host} is reachable from the network: give ${missing.join(" and ")} (see shoal ca init, shoal cert issue, shoal token create), or --insecure to run open`,
      );
    }
  }
  if (config["revoked-tokens"] && !config["token-key-file"]) {
    throw new ShoalError("SHOAL_ERR_BAD_TOKEN_KEY", "--revoked-tokens lists tokens of a --token-key-file; give that too");
  }
  const secretFile = config["secret-file"];
  if (secretFile) privateFile(secretFile, "SHOAL_ERR_BAD_SECRET_FILE");
  const keyFile = config["token-key-file"];
  if (keyFile) privateFile(keyFile, "SHOAL_ERR_BAD_TOKEN_KEY");
  const webhookFile = config["webhook-secret-file"];
  if (webhookFile) privateFile(webhookFile, "SHOAL_ERR_BAD_SECRET_FILE");
  return {
    tls: config["tls-dir"] ? loadTls(config["tls-dir"], config.name) : undefined,
    tokens: keyFile ? new TokenVerifier(readTokenKey(keyFile), config["revoked-tokens"]) : undefined,
    secret: secretFile ? readSecretFile(secretFile) : undefined,
    webhookSecret: webhookFile ? readSecretFile(webhookFile) : undefined,
  };
}

/**
 * `--tls-dir`: the CA, and this node's certificate, which must be the CA's and for this node's
 * name; `hosts` are the names and addresses in its SAN (how clients reach the node).
 */
export function loadTls(dir: string, name: string): TlsMaterial & { hosts: string[] } {
  const read = (file: string) => {
    try {
      return readFileSync(join(dir, file));
    } catch (err) {
      throw new ShoalError("SHOAL_ERR_BAD_TLS", `--tls-dir ${dir}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
  };
  const [ca, cert, key] = [read("ca.crt"), read("node.crt"), read("node.key")];
  privateFile(join(dir, "node.key"), "SHOAL_ERR_BAD_TLS");
  let caCert: X509Certificate;
  let nodeCert: X509Certificate;
  try {
    caCert = new X509Certificate(ca);
    nodeCert = new X509Certificate(cert);
  } catch (err) {
    throw new ShoalError("SHOAL_ERR_BAD_TLS", `--tls-dir ${dir}: ca.crt or node.crt is not a PEM certificate: ${(err as Error).message}`, { cause: err });
  }
  if (!nodeCert.checkIssued(caCert) || !nodeCert.verify(caCert.publicKey)) {
    throw new ShoalError("SHOAL_ERR_BAD_TLS", `--tls-dir ${dir}: node.crt is not signed by ca.crt`);
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(nodeCert.subject)?.[1];
  if (cn !== name) throw new ShoalError("SHOAL_ERR_BAD_TLS", `--tls-dir ${dir}: node.crt is for ${cn ?? "no name"}, this node is --name ${name}`);
  if (Date.parse(nodeCert.validTo) <= Date.now()) throw new ShoalError("SHOAL_ERR_BAD_TLS", `--tls-dir ${dir}: node.crt expired on ${nodeCert.validTo}`);
  const hosts = (nodeCert.subjectAltName ?? "")
    .split(", ")
    .map((entry) => /^(?:DNS|IP Address):(.+)$/.exec(entry)?.[1])
    .filter((h): h is string => h !== undefined);
  return { ca, cert, key, hosts };
}

function privateFile(file: string, code: "SHOAL_ERR_BAD_TLS" | "SHOAL_ERR_BAD_SECRET_FILE" | "SHOAL_ERR_BAD_TOKEN_KEY"): void {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    throw new ShoalError(code, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if ((mode & 0o077) !== 0) {
    throw new ShoalError(code, `${file} can be read by other users (mode ${(mode & 0o777).toString(8)}); chmod 600 ${file}`);
  }
}
