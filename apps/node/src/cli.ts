#!/usr/bin/env node
import { existsSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import { LIMITS, isShoalError } from "@shoal/protocol";
import { apiTarget } from "./commands/fetchApi.js";
import { runNodeCommand } from "./commands/nodeCommand.js";
import { runNodesCommand } from "./commands/nodesCommand.js";
import { runWorkflowCommand } from "./commands/runCommand.js";
import { runStatusCommand } from "./commands/statusCommand.js";

const int = (flag: string, min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`${flag} must be a whole number from ${min} to ${max}`);
  return n;
};
const list = (value: string, previous: string[] | undefined) => [
  ...(previous ?? []),
  ...value.split(",").map((s) => s.trim()).filter(Boolean),
];

const program = new Command("shoal")
  .description("Shoal: one actor runtime for a mesh of edge and GPU boxes")
  .configureOutput({ outputError: (str, write) => write(`${str.split("\n").filter(Boolean)[0] ?? ""}\n`) });

const nodeCommand = program
  .command("node")
  .description("run a node in the foreground (JSON logs on stdout)")
  .option("--config <file>", "YAML or JSON config file; flags override it")
  .option("--name <name>", "node name, unique in the mesh (default: host name)")
  .option("--cluster <name>", "cluster name; nodes of other clusters are refused (default: shoal)")
  .option("--host <host>", "address to listen on (default: 127.0.0.1)")
  .addOption(new Option("--port <port>", "HTTP + mesh port (default: 7400)").argParser(int("--port", 0, 65535)))
  .option("--join <host:port,...>", "seed nodes to join through", list)
  .option("--advertise <host:port>", "address peers dial to reach this node (default: --host and --port; behind NAT or a proxy, that address)")
  .option("--capabilities <cap,...>", "what this box can do, e.g. camera,gpu", list)
  .addOption(new Option("--slots <n>", "steps this node runs at once (default: 4)").argParser(int("--slots", 0, 100_000)))
  .option("--data-dir <dir>", "where the node keeps its id and state (default: ~/.shoal/NAME)")
  .option("--secret-file <file>", "membership key for plain (non-TLS) links; never an API token")
  .option("--tls-dir <dir>", "ca.crt, node.crt, node.key: mutual TLS between nodes, https for the API")
  .option("--token-key-file <file>", "the cluster's token key: the API then wants tokens made by `shoal token create`")
  .option("--revoked-tokens <file>", "ids of revoked API tokens, one per line")
  .option("--insecure", "allow running without TLS and tokens on an address that is not loopback")
  .option("--allow-host <host,...>", "Host header values accepted besides the node's own names and addresses", list)
  .option("--allow-origin <origin,...>", "browser origins allowed to call the API and open WebSockets", list)
  .option("--webhook-secret-file <file>", "key for the HMAC signature header on webhooks")
  .option("--egress-allow <rule,...>", "what http_request, llm_complete and webhooks may reach besides the LAN and the internet: loopback, link-local, metadata, unspecified, an address or a CIDR", list)
  .option("--egress-deny <rule,...>", "what they may not reach: private (the LAN), a class, an address or a CIDR", list)
  .option("--plugin <module...>", "ES module with tool or agent definitions")
  .addOption(new Option("--log-level <level>", "log level").choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"]))
  .addOption(new Option("--heartbeat-ms <ms>", "heartbeat and gossip interval (default: 500)").argParser(int("--heartbeat-ms", 10, 60_000)))
  .addOption(new Option("--suspect-after-ms <ms>", "silence before a peer is suspect (default: 1200)").argParser(int("--suspect-after-ms", 20, 600_000)))
  .addOption(new Option("--down-after-ms <ms>", "silence before a peer is down (default: 2000)").argParser(int("--down-after-ms", 30, 600_000)))
  .addOption(new Option("--max-frame-bytes <n>", "largest frame accepted from a peer (default: 16 MiB)").argParser(int("--max-frame-bytes", 1024, 1024 ** 3)))
  .option("--camera-dir <dir>", "folder this node's camera writes frames to (for vision_agent)")
  .option("--llm-url <url>", "OpenAI-compatible API base URL for llm_complete, e.g. http://gpu-01:8080/v1")
  .option("--llm-model <name>", "model name sent to the LLM endpoint")
  .addOption(new Option("--drain-grace-ms <ms>", "on SIGTERM, time running tools get to finish (default: 10000)").argParser(int("--drain-grace-ms", 0, 3_600_000)))
  .addOption(new Option("--ack <when>", "a submission's 202: once synced here and on its backups that are up, or here only (default: replicated)").choices(["replicated", "local"]))
  .addOption(new Option("--replicas <n>", "backups that keep a copy of each workflow this node owns (default: 1)").argParser(int("--replicas", 1, 16)));

for (const [key, limit] of Object.entries(LIMITS)) {
  nodeCommand.addOption(new Option(`--${key} <n>`, `${limit.doc} (default: ${limit.default})`).argParser(int(`--${key}`, limit.min, limit.max)));
}
nodeCommand.action(async (flags) => runNodeCommand(flags));

const defaultNode = process.env.SHOAL_NODE ?? "127.0.0.1:7400";

/** The flags of every command that calls a node's API. */
const apiCommand = (name: string, description: string, what: string) =>
  program
    .command(name)
    .description(description)
    .option("--node <host:port>", `node to ${what} (default: $SHOAL_NODE or 127.0.0.1:7400)`, defaultNode)
    .option("--token-file <file>", "file holding an API token (default: $SHOAL_TOKEN)")
    .option("--ca <file>", "the cluster's ca.crt: speak https to a node started with --tls-dir (default: $SHOAL_CA)");

apiCommand("run", "submit a workflow (JSON or YAML), show live progress, print the result", "submit to")
  .argument("<file>", "workflow spec")
  .option("--json", "print only the result JSON")
  .action(async (file, flags) => runWorkflowCommand(file, apiTarget(flags), flags));

apiCommand("status", "print a workflow's state, from any node", "ask")
  .argument("<workflow_id>")
  .action(async (id, flags) => runStatusCommand(id, apiTarget(flags)));

apiCommand("nodes", "print the mesh as one node sees it", "ask")
  .option("--json", "print the JSON answer")
  .action(async (flags) => runNodesCommand(apiTarget(flags), flags));

const ca = program.command("ca").description("the cluster's certificate authority");
ca.command("init")
  .description("make a cluster CA: ca.crt (give it to every node and CLI) and ca.key (keep it offline)")
  .requiredOption("--dir <dir>", "where to write ca.crt and ca.key")
  .action(async (flags: { dir: string }) => {
    const { createCa } = await import("@shoal/transport/certificates");
    const out = await createCa(flags.dir);
    process.stdout.write(`wrote ${out.cert} and ${out.key} (keep the key off the nodes)\n`);
  });

const cert = program.command("cert").description("node certificates");
cert
  .command("issue")
  .description("a node certificate signed by the cluster CA, with the node's name in its SAN: a ready --tls-dir")
  .requiredOption("--ca <dir>", "the CA dir made by `shoal ca init`")
  .requiredOption("--name <name>", "the node's name (--name of `shoal node`)")
  .option("--host <host,...>", "names and addresses the node is reached at (default: localhost,127.0.0.1)", list)
  .requiredOption("--out <dir>", "where to write node.crt, node.key and ca.crt")
  .action(async (flags: { ca: string; name: string; host?: string[]; out: string }) => {
    const { issueCertificate } = await import("@shoal/transport/certificates");
    const out = await issueCertificate({ caDir: flags.ca, name: flags.name, hosts: flags.host ?? ["localhost", "127.0.0.1"], outDir: flags.out });
    process.stdout.write(`wrote ${out.cert}, ${out.key} and ${out.ca}: use --tls-dir ${flags.out}\n`);
  });

program
  .command("token")
  .description("API tokens")
  .command("create")
  .description("print a new API token once (signed with the cluster's token key; the key file is made if it does not exist)")
  .requiredOption("--key-file <file>", "the cluster's token key: the file every node gets as --token-key-file")
  .addOption(new Option("--scope <scope>", "read: GET routes and /v1/inspect; submit: also workflows, tasks, cancel, actors; admin: everything").choices(["read", "submit", "admin"]).makeOptionMandatory())
  .option("--ttl <duration>", "lifetime, e.g. 30d, 12h, 90m", "30d")
  .action(async (flags: { keyFile: string; scope: "read" | "submit" | "admin"; ttl: string }) => {
    const { createToken, createTokenKey, parseTtl, readTokenKey } = await import("./auth/apiTokens.js");
    const ttl = parseTtl(flags.ttl);
    let key: Buffer;
    if (existsSync(flags.keyFile)) key = readTokenKey(flags.keyFile);
    else {
      key = createTokenKey(flags.keyFile);
      process.stderr.write(`shoal: made a new token key in ${flags.keyFile}; give the same file to every node as --token-key-file\n`);
    }
    const { token, claims } = createToken(key, flags.scope, ttl);
    process.stderr.write(`token ${claims.id}, scope ${claims.scope}, expires ${new Date(claims.exp * 1000).toISOString()} (revoke: add ${claims.id} to --revoked-tokens)\n`);
    process.stdout.write(`${token}\n`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  // The one place errors reach the user: one line, non-zero exit.
  const line = isShoalError(err) ? `${err.code}: ${err.message}` : String((err as Error)?.message ?? err);
  process.stderr.write(`shoal: ${line}\n`);
  process.exit(1);
});
