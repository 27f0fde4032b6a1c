import { z } from "zod";
import { EgressRuleSchema } from "./egressRules.js";
import { AddressSchema, NameSchema } from "./member.js";
import { LIMIT_DEFAULTS, limitsShape } from "./limits.js";
import { DEFAULT_MAX_FRAME_BYTES } from "./version.js";

/**
 * Settings of `shoal node`. The config file (YAML or JSON) uses these keys, which are the flag
 * names without their dashes; flags override the file; defaults fill the rest.
 */
const NodeConfigShape = {
    name: NameSchema,
    cluster: z.string().min(1).max(128),
    host: z.string().min(1).max(255),
    port: z.number().int().min(0).max(65535),
    join: z.array(AddressSchema),
    /** HOST:PORT peers dial to reach this node, when not its host and port (NAT, a port forward, a proxy). */
    advertise: AddressSchema.optional(),
    capabilities: z.array(NameSchema),
    slots: z.number().int().min(0).max(100_000),
    "data-dir": z.string().min(1),
    "secret-file": z.string().min(1).optional(),
    /** `ca.crt`, `node.crt`, `node.key`: mutual TLS for the mesh, https for the API. */
    "tls-dir": z.string().min(1).optional(),
    /** The cluster's token key: with it the API wants a bearer token signed with it. */
    "token-key-file": z.string().min(1).optional(),
    /** Ids of revoked tokens, one per line; read again when it changes. */
    "revoked-tokens": z.string().min(1).optional(),
    /** Run without TLS or tokens on an address that is not loopback. */
    insecure: z.boolean(),
    /** Host header values the API accepts besides the node's own names and addresses. */
    "allow-host": z.array(z.string().min(1).max(255)),
    /** Origins whose browser requests and WebSocket upgrades are accepted (exact, e.g. https://ops.example:8443). */
    "allow-origin": z.array(z.string().min(1).max(255)),
    /** Key for the HMAC signature header on webhooks. */
    "webhook-secret-file": z.string().min(1).optional(),
    /** What http_request and webhooks may reach besides the LAN and the internet: loopback, unspecified, link-local, metadata, addresses, CIDRs. */
    "egress-allow": z.array(EgressRuleSchema).max(1_000),
    /** What they may not reach, over everything else: private (the LAN), any class, addresses, CIDRs. */
    "egress-deny": z.array(EgressRuleSchema).max(1_000),
    plugin: z.array(z.string().min(1)),
    "log-level": z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
    /** Interval between heartbeats and gossip rounds. */
    "heartbeat-ms": z.number().int().min(10).max(60_000),
    /** Silence after which a peer is `suspect`. */
    "suspect-after-ms": z.number().int().min(20).max(600_000),
    /** Silence after which a peer is `down`. */
    "down-after-ms": z.number().int().min(30).max(600_000),
    "max-frame-bytes": z.number().int().min(1024).max(1024 * 1024 * 1024),
    /** Folder this node's camera writes frames to, for `vision_agent`. */
    "camera-dir": z.string().min(1).optional(),
    /** Base URL of an OpenAI-compatible API for `llm_complete`, e.g. http://gpu-01:8080/v1. */
    "llm-url": z.url().optional(),
    "llm-model": z.string().min(1).max(200).optional(),
    /** On SIGTERM, how long running tool actors get to finish before the node leaves. */
    "drain-grace-ms": z.number().int().min(0).max(3_600_000),
    /** When a submission's 202 goes out: once synced on the owner and on its backups that are up (`replicated`), or on the owner only (`local`). */
    ack: z.enum(["replicated", "local"]),
    /** Backups that keep a copy of each workflow this node owns. */
    replicas: z.number().int().min(1).max(16),
    ...limitsShape,
};

export const NodeConfigSchema = z
  .object(NodeConfigShape)
  .strict()
  .refine((c) => c["suspect-after-ms"] > c["heartbeat-ms"], {
    message: "suspect-after-ms must be greater than heartbeat-ms",
    path: ["suspect-after-ms"],
  })
  .refine((c) => c["down-after-ms"] >= c["suspect-after-ms"], {
    message: "down-after-ms must not be less than suspect-after-ms",
    path: ["down-after-ms"],
  });

export type NodeConfig = z.infer<typeof NodeConfigSchema>;

/** A config file: every key optional, unknown keys refused. */
export const NodeConfigFileSchema = z
  .object(NodeConfigShape)
  .partial()
  .strict();
export type NodeConfigFile = z.infer<typeof NodeConfigFileSchema>;

export const NODE_CONFIG_DEFAULTS = {
  cluster: "shoal",
  host: "127.0.0.1",
  port: 7400,
  join: [] as string[],
  capabilities: [] as string[],
  slots: 4,
  plugin: [] as string[],
  insecure: false,
  "allow-host": [] as string[],
  "allow-origin": [] as string[],
  "egress-allow": [] as string[],
  "egress-deny": [] as string[],
  "log-level": "info",
  "heartbeat-ms": 500,
  "suspect-after-ms": 1200,
  "down-after-ms": 2000,
  "max-frame-bytes": DEFAULT_MAX_FRAME_BYTES,
  "drain-grace-ms": 10_000,
  ack: "replicated",
  replicas: 1,
  ...LIMIT_DEFAULTS,
} as const;
