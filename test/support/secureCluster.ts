import { readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, tempDir } from "./shoalProcess.js";

export interface SecureCluster {
  dir: string;
  /** PEM of the cluster CA, for clients. */
  ca: string;
  caFile: string;
  tokenKeyFile: string;
  /** A `--tls-dir` for the node of this name (made on first use). */
  tlsDir(name: string): string;
  /** A fresh token of this scope, made with `shoal token create`. */
  token(scope: "read" | "submit" | "admin", ttl?: string): { token: string; id: string };
  /** `shoal node` flags for a node of this cluster: TLS and tokens. */
  nodeFlags(name: string): string[];
}

/** What an operator makes before starting secured nodes, made with the `shoal` command as they would. */
export function secureCluster(): SecureCluster {
  const dir = tempDir("shoal-pki-");
  const caDir = join(dir, "ca");
  const tokenKeyFile = join(dir, "token.key");
  mustRun(["ca", "init", "--dir", caDir]);
  const tlsDirs = new Map<string, string>();
  const cluster: SecureCluster = {
    dir,
    ca: readFileSync(join(caDir, "ca.crt"), "utf8"),
    caFile: join(caDir, "ca.crt"),
    tokenKeyFile,
    tlsDir(name) {
      let out = tlsDirs.get(name);
      if (!out) {
        out = join(dir, name);
        mustRun(["cert", "issue", "--ca", caDir, "--name", name, "--out", out]);
        tlsDirs.set(name, out);
      }
      return out;
    },
    token(scope, ttl = "1h") {
      const r = mustRun(["token", "create", "--key-file", tokenKeyFile, "--scope", scope, "--ttl", ttl]);
      const id = /token ([0-9a-f]+),/.exec(r.stderr)?.[1];
      if (!id) throw new Error(`shoal token create printed no id: ${r.stderr}`);
      return { token: r.stdout.trim(), id };
    },
    nodeFlags(name) {
      return ["--tls-dir", cluster.tlsDir(name), "--token-key-file", tokenKeyFile];
    },
  };
  // The key file is made by the first token.
  cluster.token("read");
  return cluster;
}

function mustRun(args: string[]) {
  const r = runCli(args);
  if (r.code !== 0) throw new Error(`shoal ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r;
}
