import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ProxiedMesh } from "../chaos/ProxiedMesh.js";
import { type NodeProcess, startMesh, stopAll, tempDir, until } from "../support/shoalProcess.js";

const PLUGIN = resolve(import.meta.dirname, "../fixtures/plugins/actors.mjs");
const FAST = ["--heartbeat-ms", "100", "--suspect-after-ms", "300", "--down-after-ms", "600"];
const started: NodeProcess[] = [];
const proxies: ProxiedMesh[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
  for (const p of proxies.splice(0)) await p.close();
});

/** A mesh of real node processes with the test actors; `a` has no slots, so it only supervises. */
async function mesh(names: string[], options: { slots?: Record<string, number>; extra?: string[] } = {}) {
  const dir = tempDir("actors-");
  const nodes: NodeProcess[] = [];
  for (const name of names) {
    const slots = options.slots?.[name] ?? (name.endsWith("a") ? 0 : 4);
    const m = await startMesh([name], {
      extra: ["--plugin", PLUGIN, "--slots", String(slots), ...FAST, ...(options.extra ?? []), ...(nodes[0] ? ["--join", nodes[0].address] : [])],
      env: { SHOAL_TEST_DIR: dir },
    });
    nodes.push(...m.nodes);
    started.push(...m.nodes);
  }
  for (const n of nodes) await until(async () => (await n.nodes()).filter((r) => r.status === "up").length === nodes.length, 10_000);
  return { nodes, dir };
}
const spawnActor = async (node: NodeProcess, body: object) => {
  const r = await node.post("/v1/actors", body);
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json.id as string;
};
const describeActor = async (node: NodeProcess, id: string) => (await node.get(`/v1/actors/${id}`)).json;
const ask = async (node: NodeProcess, id: string, type: string) => node.post(`/v1/actors/${id}/ask`, { event: { type } });
/** Runs recorded so far; 0 before the log exists. */
const countRuns = (dir: string) => (existsSync(join(dir, "runs.log")) ? runsIn(dir).length : 0);
const runsIn = (dir: string) =>
  readFileSync(join(dir, "runs.log"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));

describe("actors across real node processes", () => {
  it("a counter spawned on B from A, driven by events, resumes on C with its count when B is SIGKILLed", async () => {
    const { nodes } = await mesh(["r-a", "r-b", "r-c"], { slots: { "r-c": 0 } });
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const id = await spawnActor(a, { logic: "counter", input: { start: 10 } });
    for (let i = 0; i < 3; i++) expect((await a.post(`/v1/actors/${id}/events`, { event: { type: "INC" } })).status).toBe(202);
    expect((await ask(a, id, "INC")).json).toMatchObject({ context: { count: 14 }, value: "counting" });
    expect(await describeActor(a, id)).toMatchObject({ node: "r-b", epoch: 1 });
    // C had no slots; give it some now so it is the only place left to go.
    await c.kill("SIGKILL");
    const c2 = c.restart(["--slots", "4"]);
    await c2.ready();
    await until(async () => (await a.nodes()).find((n) => n.name === "r-c")?.slots === 4, 10_000);
    await b.kill("SIGKILL");
    await until(async () => (await describeActor(a, id)).node === "r-c", 10_000, () => "never moved to r-c");
    expect((await ask(a, id, "INC")).json).toMatchObject({ context: { count: 15 } });
    expect(await describeActor(a, id)).toMatchObject({ node: "r-c", epoch: 2, migrations: 1, history: [{ node: "r-b" }, { node: "r-c" }] });
    // The actor is listed where it runs, and reachable through any node.
    expect((await c2.get("/v1/actors")).json.actors).toEqual([expect.objectContaining({ id, logic: "counter", state: "counting", epoch: 2 })]);
    expect((await ask(c2, id, "INC")).json).toMatchObject({ context: { count: 16 } });
  });

  it("a machine with a pending `after` delay survives migration and fires", async () => {
    const { nodes } = await mesh(["d-a", "d-b", "d-c"]);
    const [a] = nodes as [NodeProcess];
    const id = await spawnActor(a, { logic: "delayed" });
    const startedAt = Date.now();
    await until(async () => (await describeActor(a, id)).status === "running", 5_000);
    const first = (await describeActor(a, id)).node as string;
    await nodes.find((n) => n.name === first)!.kill("SIGKILL");
    await until(async () => (await describeActor(a, id)).status === "done", 10_000, () => "delayed never fired");
    const d = await describeActor(a, id);
    expect(d).toMatchObject({ output: "fired", migrations: 1 });
    expect(d.history.map((h: { node: string }) => h.node)).toHaveLength(2);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1_900);
  });

  it("a tool on a killed node runs again exactly once elsewhere, same key, marked as a migration", async () => {
    const { nodes, dir } = await mesh(["p-a", "p-b", "p-c"]);
    const [a] = nodes as [NodeProcess];
    const id = await spawnActor(a, { logic: "slow_tool", input: { ms: 1500 } });
    await until(() => countRuns(dir) === 1, 5_000);
    const first = runsIn(dir)[0];
    await nodes.find((n) => n.name === first.node)!.kill("SIGKILL");
    await until(async () => (await describeActor(a, id)).status === "done", 10_000);
    const runs = runsIn(dir);
    expect(runs).toHaveLength(2);
    expect(runs[1]).toMatchObject({ key: first.key, attempt: 1, migration: true });
    expect(runs[1].node).not.toBe(first.node);
    expect((await describeActor(a, id)).output).toEqual({ ranOn: runs[1].node });
  });

  it("50 concurrent spawns never exceed any node's slots", async () => {
    const { nodes, dir } = await mesh(["s-a", "s-b", "s-c"], { slots: { "s-a": 1, "s-b": 2, "s-c": 3 } });
    const [a] = nodes as [NodeProcess];
    const ids = await Promise.all(Array.from({ length: 50 }, () => spawnActor(a, { logic: "busy", input: { ms: 60 } })));
    const pendingSeen = (await a.get("/metrics")).text.match(/^shoal_actors_pending (\d+)/m)?.[1];
    await until(async () => (await Promise.all(ids.map((id) => describeActor(a, id)))).every((d) => d.status === "done"), 30_000);
    const peaks = Object.fromEntries(readdirSync(dir).filter((f) => f.startsWith("peak-")).map((f) => [f.slice(5), Number(readFileSync(join(dir, f), "utf8"))]));
    expect(peaks["s-a"] ?? 0).toBeLessThanOrEqual(1);
    expect(peaks["s-b"] ?? 0).toBeLessThanOrEqual(2);
    expect(peaks["s-c"] ?? 0).toBeLessThanOrEqual(3);
    expect(Object.keys(peaks).length).toBe(3);
    expect(Number(pendingSeen)).toBeGreaterThan(0);
  });

  it("a partition that heals never gives the supervisor two outcomes", async () => {
    // Links between the nodes pass through a fault proxy: the cut is a real network's.
    const dir = tempDir("actors-");
    const proxied = await ProxiedMesh.start([{ name: "q-a", extra: ["--slots", "0"] }, { name: "q-b" }, { name: "q-c" }], {
      extra: ["--plugin", PLUGIN, "--slots", "4", ...FAST],
      env: { SHOAL_TEST_DIR: dir },
      started,
    });
    proxies.push(proxied);
    const { nodes } = proxied;
    const [a] = nodes as [NodeProcess];
    const id = await spawnActor(a, { logic: "slow_tool", input: { ms: 2500 } });
    await until(() => countRuns(dir) === 1, 5_000);
    const host = nodes.find((n) => n.name === runsIn(dir)[0].node)!;
    // The host can hear the mesh but nothing it sends arrives: to the others it is gone.
    proxied.proxy.set(host.name, "*", { cut: "drop" });
    await until(() => runsIn(dir).length === 2, 10_000, () => "never re-placed");
    await until(async () => (await describeActor(a, id)).epoch === 2, 5_000);
    // Heal while the first copy is still running: it finishes and reports for epoch 1.
    proxied.proxy.heal();
    await until(async () => (await describeActor(a, id)).status === "done", 15_000);
    const stale = async () => Number((await a.get("/metrics")).text.match(/^shoal_stale_actor_messages_total (\d+)/m)?.[1]);
    const d = await describeActor(a, id);
    expect(d.output).toEqual({ ranOn: runsIn(dir)[1].node });
    // The first copy's late outcome (epoch 1) arrives after the heal and is counted, not used.
    await until(async () => (await stale()) >= 1, 10_000, () => "the old copy's outcome never arrived");
    expect((await describeActor(a, id)).output).toEqual({ ranOn: runsIn(dir)[1].node });
  });

  it("drain on SIGTERM moves machine actors to other nodes without losing their state", async () => {
    const { nodes } = await mesh(["t-a", "t-b", "t-c"], { slots: { "t-c": 0 } });
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    const ids = [await spawnActor(a, { logic: "counter" }), await spawnActor(a, { logic: "counter" })];
    for (const id of ids) for (let i = 0; i < 3; i++) await ask(a, id, "INC");
    for (const id of ids) expect(await describeActor(a, id)).toMatchObject({ node: "t-b" });
    void b;
    // Restart t-c with slots so there is somewhere to go.
    const c = nodes[2]!;
    await c.kill("SIGKILL");
    const c2 = c.restart(["--slots", "4"]);
    await c2.ready();
    await until(async () => (await a.nodes()).find((n) => n.name === "t-c")?.slots === 4, 10_000);
    b.signal("SIGTERM");
    expect(await b.exit()).toBe(0);
    for (const id of ids) {
      await until(async () => (await describeActor(a, id)).node === "t-c" && (await describeActor(a, id)).status === "running", 10_000);
      expect((await ask(a, id, "INC")).json).toMatchObject({ context: { count: 4 } });
    }
    expect(b.logsMatching((l) => l.msg === "drained")[0]).toMatchObject({ handedOff: 2, abandoned: 0 });
  });

  it("answers bad actor requests with clear errors and keeps working", async () => {
    const { nodes } = await mesh(["e-a", "e-b"]);
    const [a] = nodes as [NodeProcess];
    const bad = [
      await a.post("/v1/actors", { logic: "nope" }),
      await a.post("/v1/actors", { logic: "counter", extra: 1 }),
      await a.post("/v1/actors", "{not json"),
      await a.post("/v1/actors/e-a~zzz/events", { event: { type: "X" } }),
      await a.post("/v1/actors/e-a~zzz/events", { event: {} }),
      await a.post("/v1/actors/nobody~zzz/ask", { event: { type: "X" } }),
    ];
    expect(bad.map((r) => [r.status, r.json.error?.code])).toEqual([
      [404, "SHOAL_ERR_UNKNOWN_LOGIC"],
      [400, "SHOAL_ERR_BAD_REQUEST"],
      [400, "SHOAL_ERR_BAD_REQUEST"],
      [404, "SHOAL_ERR_UNKNOWN_ACTOR"],
      [400, "SHOAL_ERR_BAD_REQUEST"],
      [404, "SHOAL_ERR_UNKNOWN_ACTOR"],
    ]);
    expect(bad[0]!.json.error.message).toMatch(/nope/);
    expect((await a.get("/healthz")).json.ok).toBe(true);
  });
});
