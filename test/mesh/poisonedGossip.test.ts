import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Frame, MAX_INCARNATION, type Member, type NodeRow, PROTOCOL_VERSION, createCodec } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { NodeProcess, freePort, startMesh, stopAll, until } from "../support/shoalProcess.js";

// Fast detector settings, so that invented members go down and a hung node is noticed in a second.
const FAST = ["--heartbeat-ms", "100", "--suspect-after-ms", "300", "--down-after-ms", "600"];
const started: NodeProcess[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await stopAll(started.splice(0));
});

async function mesh(names: string[], extra: string[] = []) {
  const m = await startMesh(names, { extra: [...FAST, ...extra] });
  started.push(...m.nodes);
  for (const n of m.nodes) await until(async () => (await n.nodes()).filter((r) => r.status === "up").length === names.length, 10_000);
  return m.nodes;
}

const codec = createCodec();

/**
 * A peer written by hand: ws and the codec, the handshake (no secret), then any gossip it likes.
 * It claims `node`'s own address, where its peers already have a link, so that they do not
 * dial it, find nobody, report it down and make `node` close its link before the lie arrives.
 */
async function liar(node: NodeProcess, name = "liar") {
  const ws = new WebSocket(`ws://${node.address}/mesh`);
  sockets.push(ws);
  const frames: Frame[] = [];
  const arrived = (t: Frame["t"]) => frames.some((f) => f.t === t);
  ws.on("message", (data) => {
    const frame = codec.decode(data as Buffer);
    // Heartbeats answered, as a live peer would, so that the node never finds it silent.
    if (frame.t === "ping") ws.send(codec.encode({ t: "pong", ts: frame.ts }));
    else frames.push(frame);
  });
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  const identity = { id: randomUUID(), name, address: node.address, capabilities: [], tools: [], slots: 0 };
  ws.send(codec.encode({ t: "hello", v: PROTOCOL_VERSION, cluster: "shoal", node: identity, nonce: randomBytes(32).toString("hex") }));
  await until(() => arrived("hello"), 5_000, () => `no hello from ${node.name}`);
  ws.send(codec.encode({ t: "auth" }));
  await until(() => arrived("ready"), 5_000, () => `no ready from ${node.name}`);
  return { send: (frame: Frame) => ws.send(codec.encode(frame)) };
}

const metric = async (node: NodeProcess, name: string) =>
  Number(new RegExp(`^${name} ([\\d.e+-]+)`, "m").exec((await node.get("/metrics")).text)?.[1] ?? Number.NaN);
const row = async (node: NodeProcess, name: string): Promise<NodeRow | undefined> => (await node.nodes()).find((r) => r.name === name);
const realUp = async (node: NodeProcess, names: string[]) => {
  const rows = await node.nodes();
  return names.every((n) => rows.find((r) => r.name === n)?.status === "up");
};

/** Members nobody runs, at loopback ports below the ephemeral range, where nothing listens. */
const invented = (n: number): Member[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `invented-${i}`,
    name: `invented-${i}`,
    address: `127.0.0.1:${10_000 + i}`,
    capabilities: ["camera"],
    tools: ["llm.generate"],
    slots: 64,
    incarnation: MAX_INCARNATION,
    status: "up" as const,
    running: 0,
  }));

describe("gossip from a hostile peer, against real node processes", () => {
  it("one frame of 6,000 invented members: the node keeps answering, the table stops at --max-members, the real members stay up", async () => {
    const cap = 40;
    const nodes = await mesh(["pg-a", "pg-b", "pg-c"], ["--max-members", String(cap)]);
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const names = nodes.map((n) => n.name);
    await metric(a, "shoal_nodejs_eventloop_lag_max_seconds"); // the scrape starts a new window
    const peer = await liar(a);
    peer.send({ t: "gossip", members: invented(6_000) });
    // Ask for /healthz over and over until the node says it refused records: each answer's time
    // shows how long its event loop was held meanwhile.
    let slowestMs = 0;
    await until(
      async () => {
        const askedAt = performance.now();
        expect((await a.get("/healthz")).json.ok).toBe(true);
        slowestMs = Math.max(slowestMs, performance.now() - askedAt);
        return a.logsMatching((l) => l.code === "SHOAL_ERR_TABLE_FULL").length > 0;
      },
      10_000,
      () => `no refusal logged; ${JSON.stringify(a.logsMatching((l) => Number(l.level) >= 40 || /gossip|liar|frame/.test(String(l.msg))).slice(-8))}`,
    );
    const lagS = await metric(a, "shoal_nodejs_eventloop_lag_max_seconds");
    // Seconds, before the merge cost stopped growing with the table (41 s with no cap).
    expect(slowestMs, "slowest /healthz while the frame was merged (ms)").toBeLessThan(2_000);
    expect(lagS, "event loop lag at most (s)").toBeLessThan(2);
    // Refused, a few lines and a count: not one line per record.
    expect(await metric(a, "shoal_members_refused_total")).toBeGreaterThanOrEqual(6_000 - cap);
    expect(a.logsMatching((l) => l.code === "SHOAL_ERR_TABLE_FULL").length).toBeLessThanOrEqual(10);
    expect(a.logsMatching((l) => l.code === "SHOAL_ERR_TABLE_FULL")[0]).toMatchObject({ from: "liar", maxMembers: cap });
    for (const n of nodes) {
      const rows = await n.nodes();
      expect(rows.length, n.name).toBeLessThanOrEqual(cap);
      // Taken at incarnation 0, never at the one the liar gave them.
      expect(rows.filter((r) => r.name.startsWith("invented")).every((r) => r.incarnation === 0), n.name).toBe(true);
      expect(await realUp(n, names), n.name).toBe(true);
    }
    // Nobody answers at the invented addresses: they go down everywhere; the real ones never do.
    for (const n of nodes) {
      await until(async () => (await n.nodes()).filter((r) => r.name.startsWith("invented")).every((r) => r.status === "down"), 10_000, () => `${n.name} kept invented members up`);
      expect(await realUp(n, names), n.name).toBe(true);
    }
    for (const n of [b, c]) expect((await n.get("/healthz")).json.ok).toBe(true);
    // A node that joins later inherits no more than a table's worth, and sees the real mesh.
    const d = new NodeProcess({ name: "pg-d", port: await freePort(), join: [a.address], extra: FAST }).start();
    started.push(d);
    await d.ready();
    await until(() => realUp(d, [...names, "pg-d"]), 10_000, () => "pg-d never saw the real mesh");
    expect((await d.nodes()).length).toBeLessThanOrEqual(cap + 1);
    await until(() => realUp(a, [...names, "pg-d"]), 10_000, () => "pg-a never took pg-d in");
  });

  it("1,000 invented members at one address where nobody listens: refused dials take them all down at once, and no node's event loop is held for it", async () => {
    const nodes = await mesh(["pd-a", "pd-b", "pd-c"]);
    const [a] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const names = nodes.map((n) => n.name);
    for (const n of nodes) await metric(n, "shoal_nodejs_eventloop_lag_max_seconds"); // the scrape starts a new window
    const peer = await liar(a);
    // Under the default --max-members (1,024), all at one dead address: one refused dial there
    // marks every one of them down in the same turn, on each node the gossip reached.
    peer.send({ t: "gossip", members: invented(1_000).map((m) => ({ ...m, address: "127.0.0.1:9", incarnation: 0 })) });
    let slowestMs = 0;
    let seen = "";
    for (const n of nodes) {
      await until(
        async () => {
          const askedAt = performance.now();
          expect((await n.get("/healthz")).json.ok).toBe(true);
          slowestMs = Math.max(slowestMs, performance.now() - askedAt);
          const invent = (await n.nodes()).filter((r) => r.name.startsWith("invented"));
          const down = invent.filter((r) => r.status === "down").length;
          seen = `it has ${invent.length}, ${down} of them down`;
          // pd-a holds them all; the others hold those it passed on before they went down there.
          return (n !== a || invent.length === 1_000) && down === invent.length;
        },
        20_000,
        () => `${n.name} did not take the 1,000 invented members down: ${seen}`,
      );
    }
    // Seconds on every node when each down recounted the whole table for the majority rule.
    expect(slowestMs, "slowest /healthz while they went down (ms)").toBeLessThan(1_000);
    for (const n of nodes) {
      expect(await metric(n, "shoal_nodejs_eventloop_lag_max_seconds"), `${n.name}: event loop lag at most (s)`).toBeLessThan(1);
      expect(await realUp(n, names), n.name).toBe(true);
    }
  });

  it("a report that a linked member is down, at its incarnation, is not taken over the live link to it; its own departure is", async () => {
    const nodes = await mesh(["pc-a", "pc-b", "pc-c"]);
    const [a, b] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const seen = (await a.nodes()).find((r) => r.name === "pc-b") as NodeRow;
    const record: Member = { id: seen.id, name: seen.name, address: seen.address, capabilities: seen.capabilities, tools: seen.tools, slots: seen.slots, running: 0, incarnation: seen.incarnation, status: "down" };
    // Links younger than --down-after-ms (600) may be to a member's new life: these have to be older.
    await new Promise((r) => setTimeout(r, 700));
    // What a node back from the other side of a partition gossips about the members it saw down meanwhile.
    const peer = await liar(a, "healed");
    peer.send({ t: "gossip", members: [record] });
    await until(async () => (await metric(a, "shoal_contradicted_down_reports_total")) >= 1, 5_000, () => "pc-a never weighed the report");
    // Taken, it would have closed pc-a's link to pc-b and stopped the actors pc-b supervises there.
    expect(a.logsMatching((l) => l.msg === "member down" && l.member === "pc-b")).toEqual([]);
    expect(b.logsMatching((l) => l.msg === "refuting a report that this node is not up")).toEqual([]);
    expect(await row(a, "pc-b")).toMatchObject({ status: "up", incarnation: seen.incarnation });
    // pc-b leaving says down at a higher incarnation, its own: every node takes that at once.
    await b.kill("SIGTERM");
    for (const n of nodes.filter((x) => x !== b)) await until(async () => (await row(n, "pc-b"))?.status === "down", 5_000, () => `${n.name} kept pc-b up after it left`);
  });

  it("a record raising a real node's incarnation to the bound, as down: nobody takes it, and the node still refutes a real suspicion", async () => {
    const nodes = await mesh(["pi-a", "pi-b", "pi-v"]);
    const [a, b, v] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const victim = (await v.nodes()).find((r) => r.self) as NodeRow;
    const record: Member = {
      id: victim.id,
      name: victim.name,
      address: victim.address,
      capabilities: victim.capabilities,
      tools: victim.tools,
      slots: victim.slots,
      running: 0,
      incarnation: MAX_INCARNATION,
      status: "down",
    };
    for (const n of nodes) (await liar(n, `liar-${n.name}`)).send({ t: "gossip", members: [record] });
    for (const n of [a, b]) await until(async () => (await metric(n, "shoal_unverified_incarnations_total")) >= 1, 5_000, () => `${n.name} never saw the record`);
    await until(async () => (await metric(v, "shoal_forged_incarnations_total")) >= 1, 5_000);
    expect(v.logsMatching((l) => l.code === "SHOAL_ERR_FALSE_INCARNATION")[0]).toMatchObject({ incarnation: MAX_INCARNATION, own: victim.incarnation });
    // Some rounds of gossip later (a full table among them), still: nobody took it, nobody raised anything.
    const framesBefore = await metric(v, "shoal_frames_in_total");
    await until(async () => (await metric(v, "shoal_frames_in_total")) > framesBefore + 40, 10_000);
    expect(v.logsMatching((l) => l.msg === "refuting a report that this node is not up")).toHaveLength(0);
    for (const n of nodes) expect(await row(n, "pi-v"), n.name).toMatchObject({ status: "up", incarnation: victim.incarnation });
    // A real suspicion: V hangs past the down threshold, then comes back and refutes it by one.
    v.signal("SIGSTOP");
    try {
      for (const n of [a, b]) await until(async () => (await row(n, "pi-v"))?.status === "down", 5_000, () => `${n.name} never marked pi-v down`);
    } finally {
      v.signal("SIGCONT");
    }
    for (const n of nodes) {
      await until(async () => (await row(n, "pi-v"))?.status === "up", 10_000, () => `${n.name} never saw pi-v up again`);
      expect((await row(n, "pi-v"))?.incarnation, n.name).toBe(victim.incarnation + 1);
    }
    expect(readFileSync(join(v.dataDir, "incarnation"), "utf8").trim()).toBe(String(victim.incarnation + 1));
  });

  it("a node restarted with its data dir comes back up at a higher incarnation, which the peers that knew it take", async () => {
    const nodes = await mesh(["pr-a", "pr-b", "pr-v"]);
    const [a, b, v] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const before = (await row(a, "pr-v")) as NodeRow;
    await v.kill("SIGKILL");
    for (const n of [a, b]) await until(async () => (await row(n, "pr-v"))?.status === "down", 5_000);
    v.restart();
    await v.ready();
    for (const n of nodes) await until(() => realUp(n, ["pr-a", "pr-b", "pr-v"]), 10_000, () => `${n.name} never saw pr-v back`);
    const after = (await row(a, "pr-v")) as NodeRow;
    expect(after.id).toBe(before.id);
    expect(after.incarnation).toBe(before.incarnation + 1);
    expect((await row(b, "pr-v"))?.incarnation).toBe(after.incarnation);
    // It came back without having to refute anything: it started above its last life.
    expect(v.logsMatching((l) => l.msg === "mesh started")[1]).toMatchObject({ incarnation: after.incarnation });
    expect(v.logsMatching((l) => l.msg === "refuting a report that this node is not up")).toHaveLength(0);
  });
});
