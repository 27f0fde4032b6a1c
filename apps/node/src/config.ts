import { readFileSync } from "node:fs";
import { hostname, homedir } from "node:os";
import { join } from "node:path";
import {
  NODE_CONFIG_DEFAULTS,
  type NodeConfig,
  NodeConfigFileSchema,
  NodeConfigSchema,
  ShoalError,
  describeZodError,
} from "@shoal/protocol";
import { parse as parseYaml } from "yaml";

/** What the flags said; only the flags that were given. */
export type NodeFlags = Partial<NodeConfig> & { config?: string };

/**
 * The node's settings: defaults, then the config file, then the flags. A default name is the
 * host name (an edge box usually runs one node); a default data dir is `~/.shoal/<name>`.
 */
export function resolveNodeConfig(flags: NodeFlags): NodeConfig {
  const { config: file, ...given } = flags;
  const fromFile = file ? readConfigFile(file) : {};
  const merged: Record<string, unknown> = { ...NODE_CONFIG_DEFAULTS, ...fromFile, ...given };
  merged.name ??= defaultName();
  merged["data-dir"] ??= join(homedir(), ".shoal", String(merged.name));
  const parsed = NodeConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const { message, path } = describeZodError(parsed.error);
    const key = typeof path[0] === "string" ? path[0] : undefined;
    if (file && key !== undefined && key in fromFile && !(key in given)) {
      throw new ShoalError("SHOAL_ERR_BAD_CONFIG", `${file}: ${message}`, { path });
    }
    throw new ShoalError("SHOAL_ERR_BAD_FLAG", key !== undefined && key in given ? `--${message}` : message, { path });
  }
  return parsed.data;
}

export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ShoalError("SHOAL_ERR_BAD_CONFIG", `cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    // YAML is a superset of JSON, so one parser reads both.
    value = parseYaml(text);
  } catch (err) {
    throw new ShoalError("SHOAL_ERR_BAD_CONFIG", `${file} is not valid YAML or JSON: ${(err as Error).message.split("\n")[0]}`, { cause: err });
  }
  const parsed = NodeConfigFileSchema.safeParse(value ?? {});
  if (!parsed.success) {
    const { message, path } = describeZodError(parsed.error);
    throw new ShoalError("SHOAL_ERR_BAD_CONFIG", `${file}: ${message}`, { path });
  }
  return parsed.data;
}

export function readSecretFile(file: string): string {
  let secret: string;
  try {
    secret = readFileSync(file, "utf8").trim();
  } catch (err) {
    throw new ShoalError("SHOAL_ERR_BAD_SECRET_FILE", `cannot read secret file ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (secret.length === 0) throw new ShoalError("SHOAL_ERR_BAD_SECRET_FILE", `secret file ${file} is empty`);
  return secret;
}

function defaultName(): string {
  const name = hostname().toLowerCase().replace(/[^a-z0-9_.-]/g, "-").slice(0, 64);
  return name || "shoal-node";
}
