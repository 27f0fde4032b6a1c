import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { secureCluster } from "../support/secureCluster.js";
import { NodeProcess, freePort, stopAll, tempDir, until } from "../support/shoalProcess.js";

const started: NodeProcess[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
});

function secretFile(secret: string): string {
  const file = join(tempDir(), "secret");
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return file;
}
async function node(name: string, secret: string | undefined, join: string[] = []) {
  const n = new NodeProcess({ name, port: await freePort(), join, extra: secret ? ["--secret-file", secretFile(secret)] : [] }).start();
  started.push(n);
  return n.ready();
}

describe("cluster secret", () => {
  it("admits peers with the secret and refuses one with a wrong secret, logging it on both sides", async () => {
    const a = await node("s-a", "correct horse");
    const b = await node("s-b", "correct horse", [a.address]);
    const intruder = await node("s-x", "wrong", [a.address]);
    await until(async () => (await a.nodes()).filter((r) => r.status === "up").length === 2, 10_000);
    // The intruder keeps being refused; give it a few attempts, then check nobody let it in.
    await until(() => intruder.logsMatching((l) => l.code === "SHOAL_ERR_AUTH_FAILED").length >= 2, 10_000, () => "intruder never logged the refusal");
    for (const member of [a, b]) {
      const rows = await member.nodes();
      expect(rows.map((r) => r.name).sort()).toEqual(["s-a", "s-b"]);
    }
    expect((await intruder.nodes()).map((r) => r.name)).toEqual(["s-x"]);
    // Both sides say so in their logs: the dialer found the proof wrong, the acceptor saw the close.
    const refusal = intruder.logsMatching((l) => l.code === "SHOAL_ERR_AUTH_FAILED")[0];
    expect(refusal?.msg).toMatch(/secret/);
    await until(() => a.logsMatching((l) => l.code === "SHOAL_ERR_AUTH_FAILED" || (typeof l.msg === "string" && /handshake failed/.test(l.msg))).length > 0, 5_000);
    // The node keeps working for everyone else.
    expect((await a.get("/healthz")).json).toEqual({ ok: true, node: "s-a" });
  });

  it("refuses a node without a secret file", async () => {
    const a = await node("o-a", "sesame");
    const open = await node("o-b", undefined, [a.address]);
    await until(() => open.logsMatching((l) => l.code === "SHOAL_ERR_AUTH_FAILED").length > 0, 10_000);
    expect((await a.nodes()).map((r) => r.name)).toEqual(["o-a"]);
    const metrics = (await a.get("/metrics")).text;
    expect(metrics).toMatch(/shoal_auth_failures_total \d+/);
  });

  it("the membership secret is never an API token", async () => {
    const keys = secureCluster();
    const a = new NodeProcess({ name: "api-a", port: await freePort(), extra: ["--secret-file", secretFile("sesame"), "--token-key-file", keys.tokenKeyFile] }).start();
    started.push(a);
    await a.ready();
    const denied = await a.get("/v1/nodes", { authorization: "Bearer sesame" });
    expect(denied.status).toBe(401);
    expect(denied.json.error.code).toBe("SHOAL_ERR_UNAUTHORIZED");
    expect((await a.get("/v1/nodes", { authorization: `Bearer ${keys.token("read").token}` })).status).toBe(200);
  });
});
