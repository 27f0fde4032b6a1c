import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
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
const auth = (secret: string) => ({ authorization: `Bearer ${secret}` });

describe("cluster secret", () => {
  it("admits peers with the secret and refuses one with a wrong secret, logging it on both sides", async () => {
    const a = await node("s-a", "correct horse");
    const b = await node("s-b", "correct horse", [a.address]);
    const intruder = await node("s-x", "wrong", [a.address]);
    await until(async () => (await a.nodes(auth("correct horse"))).filter((r) => r.status === "up").length === 2, 10_000);
    // The intruder keeps being refused; give it a few attempts, then check nobody let it in.
    await until(() => intruder.logsMatching((l) => l.code === "SHOAL_ERR_AUTH_FAILED").length >= 2, 10_000, () => "intruder never logged the refusal");
    for (const member of [a, b]) {
      const rows = await member.nodes(auth("correct horse"));
      expect(rows.map((r) => r.name).sort()).toEqual(["s-a", "s-b"]);
    }
    expect((await intruder.nodes(auth("wrong"))).map((r) => r.name)).toEqual(["s-x"]);
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
    expect((await a.nodes(auth("sesame"))).map((r) => r.name)).toEqual(["o-a"]);
    const metrics = (await a.get("/metrics", auth("sesame"))).text;
    expect(metrics).toMatch(/shoal_auth_failures_total \d+/);
  });

  it("API calls need the secret as a bearer token; /healthz stays open for probes", async () => {
    const a = await node("api-a", "sesame");
    expect((await a.get("/healthz")).status).toBe(200);
    const denied = await a.get("/v1/nodes");
    expect(denied.status).toBe(401);
    expect(denied.json.error.code).toBe("SHOAL_ERR_UNAUTHORIZED");
    expect((await a.get("/v1/nodes", auth("nope"))).status).toBe(401);
    expect((await a.get("/metrics")).status).toBe(401);
    expect((await a.get("/v1/nodes", auth("sesame"))).status).toBe(200);
  });
});
