import { afterEach, describe, expect, it } from "vitest";
import { NodeProcess, freePort, startMesh, stopAll, until } from "../support/shoalProcess.js";

// Fast detector settings, passed as flags, so the failure tests take a second, not minutes.
const FAST = ["--heartbeat-ms", "100", "--suspect-after-ms", "300", "--down-after-ms", "600"];
const started: NodeProcess[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
});

async function mesh(names: string[], extra: string[] = []) {
  const m = await startMesh(names, { extra });
  started.push(...m.nodes);
  return m.nodes;
}
const allUp = async (node: NodeProcess, n: number) => (await node.nodes()).filter((r) => r.status === "up").length === n;

describe("membership across real node processes", () => {
  it("three nodes each show three up in /v1/nodes, with capabilities, slots and load", async () => {
    const nodes = await mesh(["m-a", "m-b", "m-c"], ["--capabilities", "camera,thermal", "--slots", "3"]);
    for (const n of nodes) await until(() => allUp(n, 3), 10_000, () => `${n.name} never saw 3 up`);
    const rows = await nodes[0]!.nodes();
    expect(rows.map((r) => r.name).sort()).toEqual(["m-a", "m-b", "m-c"]);
    for (const r of rows) {
      expect(r).toMatchObject({ status: "up", capabilities: ["camera", "thermal"], slots: 3, running: 0, load: 0 });
      expect(r.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(r.id).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(rows.filter((r) => r.self).map((r) => r.name)).toEqual(["m-a"]);
  });

  it("a node that joined through B is known to C, which joined through A", async () => {
    const [a, b] = await mesh(["g-a", "g-b"]);
    const c = new NodeProcess({ name: "g-c", port: await freePort(), join: [a!.address] }).start();
    const d = new NodeProcess({ name: "g-d", port: await freePort(), join: [b!.address] }).start();
    started.push(c, d);
    await Promise.all([c.ready(), d.ready()]);
    await until(async () => (await c.statusOf("g-d")) === "up", 10_000, () => "C never learned of D");
    await until(() => allUp(d, 4), 10_000, () => "D never saw all 4 up");
  });

  it("a SIGKILLed node is down on the others within the detection time, and up again after restart", async () => {
    const nodes = await mesh(["k-a", "k-b", "k-c"], FAST);
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    for (const n of nodes) await until(() => allUp(n, 3), 10_000);
    const killedAt = Date.now();
    await c.kill("SIGKILL");
    const noticed = await Promise.all(
      [a, b].map((n) => until(async () => (await n.statusOf("k-c")) === "down", 5_000, () => `${n.name} never marked k-c down`)),
    );
    // The crash path: the connection closes, the redial is refused, down at once.
    for (const ms of noticed) expect(ms).toBeLessThan(600 + 500);
    expect(Date.now() - killedAt).toBeLessThan(2_000);
    const idBefore = (await a.nodes()).find((r) => r.name === "k-c")?.id;
    c.restart();
    await c.ready();
    for (const n of [a, b, c]) await until(() => allUp(n, 3), 10_000, () => `${n.name} never saw k-c back`);
    const rows = await a.nodes();
    expect(rows.filter((r) => r.name === "k-c")).toHaveLength(1);
    expect(rows.find((r) => r.name === "k-c")?.id).toBe(idBefore);
  });

  it("a hung node (SIGSTOP: connection open, no answers) is down by the heartbeat deadline, and refutes it on SIGCONT", async () => {
    const nodes = await mesh(["h-a", "h-b", "h-c"], FAST);
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    for (const n of nodes) await until(() => allUp(n, 3), 10_000);
    c.signal("SIGSTOP");
    try {
      const ms = await until(async () => (await a.statusOf("h-c")) === "down", 5_000, () => "h-c never marked down");
      expect(ms).toBeGreaterThanOrEqual(300); // not the crash path: silence had to pass
      await until(async () => (await b.statusOf("h-c")) === "down", 5_000);
    } finally {
      c.signal("SIGCONT");
    }
    for (const n of nodes) await until(() => allUp(n, 3), 10_000, () => `${n.name} never saw h-c up again`);
    const row = (await a.nodes()).find((r) => r.name === "h-c");
    expect(row?.incarnation).toBeGreaterThan(0);
  });

  it("SIGTERM: the node says goodbye, the others mark it down at once, and it exits 0", async () => {
    const nodes = await mesh(["t-a", "t-b"]);
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    await until(() => allUp(a, 2), 10_000);
    b.signal("SIGTERM");
    expect(await b.exit()).toBe(0);
    // Default settings: silence alone would take 2 s; the goodbye makes it immediate.
    const ms = await until(async () => (await a.statusOf("t-b")) === "down", 5_000);
    expect(ms).toBeLessThan(1_000);
    expect(b.logsMatching((l) => l.msg === "node stopped")).toHaveLength(1);
  });

  it("a 500 ms synchronous block on one node does not make the others suspect it (default settings)", async () => {
    const m = await startMesh(["b-a", "b-b"], { env: { SHOAL_DEBUG_ROUTES: "1" } });
    started.push(...m.nodes);
    const [a, b] = m.nodes as [NodeProcess, NodeProcess];
    await until(async () => (await allUp(a, 2)) && (await allUp(b, 2)), 10_000);
    const seen = new Set<string>();
    let maxSilence = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const row = (await a.nodes()).find((r) => r.name === "b-b");
        if (row) {
          seen.add(row.status);
          maxSilence = Math.max(maxSilence, row.last_seen_ms ?? 0);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    for (let i = 0; i < 5; i++) {
      expect((await b.post("/debug/block?ms=500")).json).toEqual({ blockedMs: 500 });
      await new Promise((r) => setTimeout(r, 300));
    }
    watching = false;
    await watcher;
    // b-b's own view of a-a must not have suffered either.
    expect(await b.statusOf("b-a")).toBe("up");
    expect([...seen]).toEqual(["up"]);
    expect(maxSilence).toBeGreaterThanOrEqual(450);
    expect(maxSilence).toBeLessThan(1_200);
  });
});
