import { randomBytes, randomUUID } from "node:crypto";
import { type ErrorBody, type Frame, type Member, type NodeIdentity, type NodeRow, PROTOCOL_VERSION, WorkflowStateSchema, createCodec } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { type NodeProcess, stopAll, until } from "../support/shoalProcess.js";
import { resultOf, submit, workflowMesh } from "../support/workflowMesh.js";

const started: NodeProcess[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await stopAll(started.splice(0));
});

const codec = createCodec();
const FORBIDDEN = "SHOAL_ERR_PEER_FORBIDDEN";
const forbiddenCount = (node: NodeProcess) => node.metric("shoal_forbidden_peer_messages_total");
const forbiddenLines = (node: NodeProcess) => node.logsMatching((l) => l.code === FORBIDDEN);

/**
 * A peer that passes the handshake (these nodes run open, on loopback) and then sends what an
 * attacker with the cluster's credentials would: requests, casts and gossip in other nodes'
 * names; it never answers what it is asked. It links to every node under one identity, as a
 * real member would, so that none of them finds it silent and reports it down (which would
 * close its links); it announces the first node's address, which every node has a link to
 * already, and no slots or tools, so nothing is placed on it.
 */
async function forger(nodes: NodeProcess[], name = "forger") {
  const identity: NodeIdentity = { id: randomUUID(), name, address: (nodes[0] as NodeProcess).address, capabilities: [], tools: [], slots: 0 };
  const links = new Map<NodeProcess, Awaited<ReturnType<typeof link>>>();
  for (const node of nodes) links.set(node, await link(node, identity));
  return { identity, at: (node: NodeProcess) => links.get(node) as Awaited<ReturnType<typeof link>> };
}

async function link(node: NodeProcess, identity: NodeIdentity) {
  const ws = new WebSocket(`ws://${node.address}/mesh`);
  sockets.push(ws);
  const frames: Frame[] = [];
  ws.on("message", (data) => {
    const frame = codec.decode(data as Buffer);
    if (frame.t === "ping") ws.send(codec.encode({ t: "pong", ts: frame.ts }));
    // Requests to it (nodes asking every member for a workflow) are never answered.
    else frames.push(frame);
  });
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  const send = (frame: Frame) => ws.send(codec.encode(frame));
  send({ t: "hello", v: PROTOCOL_VERSION, cluster: "shoal", node: identity, nonce: randomBytes(32).toString("hex") });
  await until(() => frames.some((f) => f.t === "hello"), 5_000, () => `no hello from ${node.name}`);
  send({ t: "auth" });
  await until(() => frames.some((f) => f.t === "ready"), 5_000, () => `no ready from ${node.name}`);
  let nextId = 1;
  let errorsSeen = 0;
  const errors = () => frames.filter((f): f is Extract<Frame, { t: "error" }> => f.t === "error");
  return {
    send,
    /** Sends a request and resolves with the error the node answered (undefined if it answered a body). */
    async request(method: string, body: unknown): Promise<ErrorBody | undefined> {
      const id = nextId++;
      send({ t: "req", id, method, body });
      const answer = () => frames.find((f): f is Extract<Frame, { t: "res" }> => f.t === "res" && f.id === id);
      await until(() => answer() !== undefined, 5_000, () => `no answer to ${method}`);
      return answer()?.error;
    },
    /** Sends a cast or a gossip frame and resolves with the error frame the node answered it with. */
    async refused(frame: Frame): Promise<ErrorBody> {
      const seen = errorsSeen++;
      send(frame);
      await until(() => errors().length > seen, 5_000, () => `no error frame for ${frame.t}`);
      return (errors()[seen] as Extract<Frame, { t: "error" }>).error;
    },
  };
}

/** A membership row as gossip carries it. */
const memberOf = (row: NodeRow): Member => ({
  id: row.id,
  name: row.name,
  address: row.address,
  capabilities: row.capabilities,
  tools: row.tools,
  slots: row.slots,
  running: row.running,
  incarnation: row.incarnation,
  status: row.status,
});
const rowOf = async (node: NodeProcess, name: string) => (await node.nodes()).find((r) => r.name === name) as NodeRow;

/** first, then second (long enough to forge things while it runs), then third. */
const chain = {
  name: "forged",
  steps: [
    { id: "first", tool: "sleep_tool", input: { ms: 10 } },
    { id: "second", tool: "sleep_tool", needs: ["first"], input: { ms: 2_000 } },
    { id: "third", tool: "sleep_tool", needs: ["second"], input: { ms: 10 } },
  ],
};

describe("forged peer messages against real node processes", () => {
  it("a claim at epoch 999, claims in another's name or without the copy, forged replicas: refused, counted, logged once; the workflow completes at its owner", async () => {
    const { nodes } = await workflowMesh([{ name: "fc-a", slots: 0 }, { name: "fc-b" }, { name: "fc-c" }], started);
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const id = await submit(a, chain);
    const copied = (l: Record<string, unknown>) => l.msg === "kept a copy of a workflow" && l.workflowId === id;
    await until(() => b.logsMatching(copied).length + c.logsMatching(copied).length > 0, 10_000, () => "no peer got a copy");
    const backup = b.logsMatching(copied).length > 0 ? b : c;
    const ids = Object.fromEntries((await a.nodes()).map((r) => [r.name, r.id]));

    const rogue = await forger(nodes);
    const atOwner = rogue.at(a);
    const claim = (owner: string, epoch: number) => ({ t: "cast" as const, method: "workflow.claimed", body: { workflow_id: id, owner, owner_name: "forger", epoch } });
    expect(await atOwner.refused(claim(rogue.identity.id, 999))).toMatchObject({ code: FORBIDDEN, message: /epoch 999 .* a takeover is at the next epoch only/ });
    expect(await atOwner.refused(claim(rogue.identity.id, 2))).toMatchObject({ code: FORBIDDEN, message: /owned here and its copy is not with it/ });
    // Id spoofing in the body: a claim in the backup's name, which would be let through from the backup itself.
    expect(await atOwner.refused(claim(ids[backup.name] as string, 2))).toMatchObject({ code: FORBIDDEN, message: /not for itself/ });

    const atBackup = rogue.at(backup);
    const replica = (owner: string, epoch: number) => ({ op: "started", workflow_id: id, owner, epoch, spec: chain, instances: [], started_at: Date.now(), records: [] });
    expect(await atBackup.request("workflow.replica", replica(rogue.identity.id, 2))).toMatchObject({ code: FORBIDDEN, message: /owned by node .*, which is up/ });
    expect(await atBackup.request("workflow.replica", replica(ids["fc-a"] as string, 1))).toMatchObject({ code: FORBIDDEN, message: /as owned by node .*, not by itself/ });
    expect(await atBackup.request("workflow.replica", { ...replica(rogue.identity.id, 1), epoch: "one" })).toMatchObject({ code: "SHOAL_ERR_BAD_SCHEMA", path: ["epoch"] });
    // A first copy planted on the node that knows nothing of the workflow: at epoch 1 only its acceptor, whom the id names, sends one.
    const bystander = backup === b ? c : b;
    expect(await rogue.at(bystander).request("workflow.replica", replica(rogue.identity.id, 1))).toMatchObject({ code: FORBIDDEN, message: /the id names the node that accepted it/ });

    // The workflow runs on at its owner, whose copy stays with its backup.
    expect(await resultOf(a, id, 20_000)).toMatchObject({ status: "complete", steps_completed: 3 });
    for (const n of nodes) {
      // Asked through every member, the silent forger among them: the owner's answer is taken at once.
      const askedAt = performance.now();
      expect(WorkflowStateSchema.parse((await n.get(`/v1/workflows/${id}`)).json)).toMatchObject({ status: "complete", owner: "fc-a" });
      expect(performance.now() - askedAt, `${n.name} answered`).toBeLessThan(2_000);
    }
    expect(await a.metric("shoal_workflows_gave_way_total")).toBe(0);
    expect(backup.logsMatching((l) => copied(l) && l.owner === rogue.identity.id)).toHaveLength(0);
    expect(await forbiddenCount(a)).toBe(3);
    expect(await forbiddenCount(backup)).toBe(2);
    expect(await forbiddenCount(bystander)).toBe(1);
    expect(bystander.logsMatching((l) => copied(l) && l.owner === rogue.identity.id)).toHaveLength(0);
    // Three refusals from one peer within a minute: one line.
    expect(forbiddenLines(a)).toHaveLength(1);
    expect(forbiddenLines(a)[0]).toMatchObject({ level: 40, peer: "forger", what: "workflow.claimed" });
  }, 60_000);

  it("gossip giving another node 100,000 slots and tools, another address, or a record in another's name: refused; the honest record stays and work still goes to it", async () => {
    const { nodes } = await workflowMesh([{ name: "fg-a", slots: 0 }, { name: "fg-b" }], started);
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    const honest = await rowOf(a, "fg-b");
    const forged = await forger(nodes);
    const peer = forged.at(a);
    const rogue = { ...memberOf(honest), slots: 100_000, tools: [...honest.tools, "evil.tool"], running: 0 };
    expect(await peer.refused({ t: "gossip", members: [rogue] })).toMatchObject({ code: FORBIDDEN, message: /its record of fg-b says tools .* other than fg-b itself/ });
    expect(await peer.refused({ t: "gossip", members: [{ ...memberOf(honest), address: "127.0.0.1:9" }] })).toMatchObject({ code: FORBIDDEN, message: /address 127.0.0.1:9/ });
    expect(await peer.refused({ t: "gossip", members: [{ ...memberOf(honest), slots: 100_000 }] })).toMatchObject({ code: FORBIDDEN, message: /its record of fg-b offers 100000 slots/ });
    // Its own record under another node's name: the id is its own, the name is not its hello's.
    expect(await peer.refused({ t: "gossip", members: [{ ...memberOf(honest), id: forged.identity.id, address: a.address }] })).toMatchObject({ code: FORBIDDEN, message: /its own record says name fg-b/ });
    expect(await forbiddenCount(a)).toBe(4);
    // A third party may still report it suspect: that goes through, and fg-b refutes it.
    peer.send({ t: "gossip", members: [{ ...memberOf(honest), status: "suspect" }] });
    await until(async () => (await rowOf(a, "fg-b")).incarnation === honest.incarnation + 1, 5_000, () => "fg-b never refuted the suspicion");
    expect(await forbiddenCount(a)).toBe(4);
    expect(await rowOf(a, "fg-b")).toMatchObject({ slots: honest.slots, tools: honest.tools, address: honest.address, status: "up" });
    expect(await rowOf(b, "fg-b")).toMatchObject({ slots: honest.slots, tools: honest.tools });
    // Nothing is placed on the forger or lost to it: the work goes to fg-b.
    const id = await submit(a, { name: "after", steps: [{ id: "s", tool: "sleep_tool", input: { ms: 10 } }] });
    expect(await resultOf(a, id)).toMatchObject({ status: "complete", nodes_used: ["fg-b"] });
  }, 60_000);

  it("steering an actor it neither supervises nor hosts: host.stop/send/spawn/holds and sup.outcome/update refused; the actor runs on", async () => {
    const { nodes } = await workflowMesh([{ name: "fs-a", slots: 0 }, { name: "fs-b" }], started);
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    const spawned = await a.post("/v1/actors", { logic: "counter", input: { start: 5 } });
    expect(spawned.status).toBe(201);
    const actorId = spawned.json.id as string;
    expect(spawned.json).toMatchObject({ node: "fs-b", epoch: 1 });
    const ids = Object.fromEntries((await a.nodes()).map((r) => [r.name, r.id]));

    const rogue = await forger(nodes);
    const atHost = rogue.at(b);
    expect(await atHost.request("host.stop", { actorId, epoch: 1 })).toMatchObject({ code: FORBIDDEN, message: /actor fs-a~\w+ is supervised by fs-a/ });
    expect(await atHost.request("host.send", { actorId, event: { type: "DONE" } })).toMatchObject({ code: FORBIDDEN });
    // A spawn that names fs-a as supervisor, from a node that is not fs-a.
    const spawn = { actorId, logic: "counter", input: {}, supervisor: ids["fs-a"], epoch: 2, key: actorId, attempt: 1, migration: false };
    expect(await atHost.request("host.spawn", spawn)).toMatchObject({ code: FORBIDDEN, message: /supervised by fs-a/ });
    // Asking which of fs-a's actors run there: only fs-a may.
    expect(await atHost.request("host.holds", { actors: [{ actorId, epoch: 1 }] })).toMatchObject({ code: FORBIDDEN, message: /supervised by fs-a/ });

    const atSupervisor = rogue.at(a);
    expect(await atSupervisor.request("sup.outcome", { actorId, epoch: 1, status: "done", output: 99 })).toMatchObject({ code: FORBIDDEN, message: /placed on node .* at epoch 1/ });
    expect(await atSupervisor.refused({ t: "cast", method: "sup.update", body: { actorId, epoch: 1, snapshot: { status: "done", output: 99 } } })).toMatchObject({ code: FORBIDDEN });
    expect(await forbiddenCount(b)).toBe(4);
    expect(await forbiddenCount(a)).toBe(2);

    // The actor is where it was, with its count, and still takes events from its supervisor.
    const asked = await a.post(`/v1/actors/${actorId}/ask`, { event: { type: "INC" } });
    expect(asked.json).toMatchObject({ status: "active", context: { count: 6 } });
    expect((await a.get(`/v1/actors/${actorId}`)).json).toMatchObject({ status: "running", node: "fs-b", epoch: 1 });
  }, 60_000);

  it("inspection events in another node's name: refused and counted, the node's view of that node unchanged", async () => {
    const { nodes } = await workflowMesh([{ name: "fi-a" }, { name: "fi-b" }], started);
    const [a] = nodes as [NodeProcess, NodeProcess];
    const rogue = await forger(nodes);
    const lie = { kind: "member", at: Date.now(), node: "fi-b", member: { ...(await rowOf(a, "fi-b")), status: "down" } };
    expect(await rogue.at(a).refused({ t: "cast", method: "inspect.events", body: { events: [lie] } })).toMatchObject({
      code: FORBIDDEN,
      message: /an inspection event about fi-b, sent by forger/,
    });
    expect(await forbiddenCount(a)).toBe(1);
    expect((await rowOf(a, "fi-b")).status).toBe("up");
  }, 60_000);
});
