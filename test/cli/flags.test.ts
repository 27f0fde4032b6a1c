import { chmodSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NodeProcess, freePort, runCli, stopAll, tempDir } from "../support/shoalProcess.js";

const started: NodeProcess[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
});

function file(name: string, text: string): string {
  const path = join(tempDir(), name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

/** One line on stderr, naming the problem, and a non-zero exit code. */
function expectOneLineFailure(args: string[], pattern: RegExp) {
  const r = runCli(["node", "--data-dir", tempDir(), ...args]);
  expect(r.code).not.toBe(0);
  const lines = r.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

describe("shoal node: bad flags and config", () => {
  it.each([
    [["--port", "not-a-port"], /--port must be a whole number/],
    [["--port", "70000"], /--port must be a whole number/],
    [["--slots", "-1"], /--slots/],
    [["--log-level", "loud"], /--log-level/],
    [["--name", "bad name!"], /name/],
    [["--join", "no-port-here"], /join/],
    [["--advertise", "no-port-here"], /advertise/],
    [["--egress-allow", "everything"], /egress-allow.*an egress rule is one of/],
    [["--heartbeat-ms", "500", "--suspect-after-ms", "400"], /suspect-after-ms must be greater than heartbeat-ms/],
    [["--no-such-flag"], /unknown option/],
    [["--secret-file", "/nonexistent/secret"], /SHOAL_ERR_BAD_SECRET_FILE/],
    [["--plugin", "./no-such-plugin.js"], /SHOAL_ERR_BAD_PLUGIN: --plugin .*cannot load/],
  ])("%j fails with one line", (args, pattern) => {
    expectOneLineFailure(args as string[], pattern);
  });

  it("is secure unless told otherwise: a host reachable from the network needs TLS and tokens, or --insecure", () => {
    expectOneLineFailure(["--host", "0.0.0.0"], /SHOAL_ERR_INSECURE: --host 0.0.0.0 is reachable from the network: give --tls-dir and --token-key-file/);
    expectOneLineFailure(["--tls-dir", "/nonexistent"], /SHOAL_ERR_BAD_TLS: --tls-dir \/nonexistent: cannot read ca.crt/);
    expectOneLineFailure(["--revoked-tokens", "/nonexistent"], /SHOAL_ERR_BAD_TOKEN_KEY: --revoked-tokens lists tokens of a --token-key-file/);
  });

  it("refuses a secret file that other users can read", () => {
    const open = file("open-secret", "sesame");
    chmodSync(open, 0o644);
    expectOneLineFailure(["--secret-file", open], /SHOAL_ERR_BAD_SECRET_FILE: .* can be read by other users .*chmod 600/);
  });

  it("refuses an empty secret file", () => {
    expectOneLineFailure(["--secret-file", file("secret", "\n")], /secret file .* is empty/);
  });

  it.each([
    ["not YAML", "name: [unclosed", /not valid YAML or JSON/],
    ["unknown key", "name: a\ncolour: blue\n", /Unrecognized key.*colour|colour/],
    ["wrong type", "port: seventy\n", /port/],
    ["bad JSON", '{"name": ', /not valid YAML or JSON/],
  ])("a config file with %s fails naming the problem", (_what, text, pattern) => {
    const r = runCli(["node", "--config", file("shoal.yaml", text)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/SHOAL_ERR_BAD_CONFIG/);
    expect(r.stderr).toMatch(pattern);
  });

  it("a missing config file fails with one line", () => {
    expectOneLineFailure(["--config", "/nonexistent/shoal.yaml"], /cannot read config file/);
  });

  it("a port in use fails with one line", async () => {
    const blocker = createServer();
    const port = await new Promise<number>((resolve) => blocker.listen(0, "127.0.0.1", () => resolve((blocker.address() as { port: number }).port)));
    try {
      expectOneLineFailure(["--port", String(port)], new RegExp(`SHOAL_ERR_PORT_IN_USE: port ${port}`));
    } finally {
      blocker.close();
    }
  });

  it("--advertise is the address peers and /v1/nodes see", async () => {
    const node = new NodeProcess({ name: "adv", port: await freePort(), extra: ["--advertise", "127.0.0.1:9"] }).start();
    started.push(node);
    await node.ready();
    expect((await node.nodes())[0]?.address).toBe("127.0.0.1:9");
  });

  it("two nodes on one data dir: the second is refused", async () => {
    const dataDir = tempDir();
    const first = new NodeProcess({ name: "dd-a", port: await freePort(), dataDir }).start();
    started.push(first);
    await first.ready();
    expectOneLineFailure(["--data-dir", dataDir, "--port", String(await freePort())], /SHOAL_ERR_DATA_DIR_LOCKED/);
  });

  it("a node SIGKILLed (or its box's power cut) starts again at once on its data dir, whatever pid the old lock named", async () => {
    const dataDir = tempDir();
    const node = new NodeProcess({ name: "dd-k", port: await freePort(), dataDir }).start();
    started.push(node);
    await node.ready();
    await node.kill("SIGKILL");
    // An older version's lock file naming a live process (here this one) changes nothing.
    writeFileSync(join(dataDir, "node.lock"), String(process.pid));
    node.restart();
    await node.ready();
    expect((await node.get("/healthz")).json.ok).toBe(true);
  });
});

describe("shoal node: config files", () => {
  it("reads YAML, and flags override it", async () => {
    const port = await freePort();
    const config = file("node.yaml", `name: from-file\ncapabilities: [camera]\nslots: 2\nport: ${port}\n`);
    const node = new NodeProcess({ name: "from-flag", port, extra: ["--config", config] }).start();
    started.push(node);
    await node.ready();
    expect((await node.get("/healthz")).json).toEqual({ ok: true, node: "from-flag" });
    expect((await node.nodes())[0]).toMatchObject({ name: "from-flag", capabilities: ["camera"], slots: 2 });
  });

  it("reads JSON", async () => {
    const port = await freePort();
    const config = file("node.json", JSON.stringify({ name: "json-node", port, "heartbeat-ms": 200, "suspect-after-ms": 600, "down-after-ms": 1000 }));
    const r = runCli(["node", "--config", config, "--data-dir", tempDir(), "--port", "not-a-port"]);
    expect(r.code).not.toBe(0); // the flag still wins over the file, even when bad
    const node = new NodeProcess({ name: "json-node", port, extra: ["--config", config] }).start();
    started.push(node);
    await node.ready();
    expect((await node.get("/healthz")).json.node).toBe("json-node");
  });
});
