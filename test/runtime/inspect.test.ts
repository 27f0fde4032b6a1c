import { resolve } from "node:path";
import type { InspectEvent } from "@shoal/protocol";
import { InspectEventSchema } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { secureCluster } from "../support/secureCluster.js";
import { type NodeProcess, startMesh, stopAll, until } from "../support/shoalProcess.js";

const PLUGIN = resolve(import.meta.dirname, "../fixtures/plugins/actors.mjs");
const started: NodeProcess[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await stopAll(started.splice(0));
});

async function mesh(extra: string[] = []) {
  const nodes: NodeProcess[] = [];
  for (const [name, slots] of [["i-a", 0], ["i-b", 4]] as const) {
    const m = await startMesh([name], { extra: ["--plugin", PLUGIN, "--slots", String(slots), ...extra, ...(nodes[0] ? ["--join", nodes[0].address] : [])] });
    nodes.push(...m.nodes);
    started.push(...m.nodes);
  }
  return nodes as [NodeProcess, NodeProcess];
}

/** Connects to /v1/inspect and collects every event, each checked against its schema. */
async function inspect(node: NodeProcess, query = "") {
  const events: InspectEvent[] = [];
  const ws = new WebSocket(`ws://${node.address}/v1/inspect${query}`);
  sockets.push(ws);
  ws.on("message", (data) => {
    for (const e of JSON.parse(String(data)) as unknown[]) events.push(InspectEventSchema.parse(e));
  });
  await new Promise((res, rej) => ws.once("open", res).once("error", rej));
  return events;
}

/** The token with the first character of its signature changed (the last one may carry only padding bits). */
function forged(token: string): string {
  const at = token.lastIndexOf(".") + 1;
  return `${token.slice(0, at)}${token[at] === "A" ? "B" : "A"}${token.slice(at + 1)}`;
}

describe("WS /v1/inspect", () => {
  it("streams the whole mesh through one node: members, placements, and XState events of actors on other nodes", async () => {
    const [a] = await mesh();
    await until(async () => (await a.nodes()).filter((n) => n.status === "up").length === 2, 10_000);
    const events = await inspect(a);
    await until(() => events.filter((e) => e.kind === "member").length >= 2, 5_000);
    // The lease went to i-b on the same connection as the spawn that follows, so it is there first.
    const id = (await a.post("/v1/actors", { logic: "counter" })).json.id as string;
    await a.post(`/v1/actors/${id}/events`, { event: { type: "INC" } });
    await until(() => events.some((e) => e.kind === "actor" && e.actorId === id && e.type === "@xstate.event" && (e.event as { type: string }).type === "INC"), 5_000);
    const fromB = events.filter((e) => e.kind === "actor" && e.actorId === id);
    expect(fromB.every((e) => e.node === "i-b")).toBe(true);
    expect(fromB.some((e) => e.kind === "actor" && e.type === "@xstate.snapshot" && (e.snapshot?.context as { count: number })?.count === 1)).toBe(true);
    expect(events.some((e) => e.kind === "placement" && e.actorId === id && e.host === "i-b" && e.status === "running" && e.node === "i-a")).toBe(true);
  });

  it("filters by workflow: only that workflow's events (and members) arrive", async () => {
    const [a] = await mesh();
    await until(async () => (await a.nodes()).filter((n) => n.status === "up").length === 2, 10_000);
    const one = (await a.post("/v1/workflows", { name: "one", steps: [{ id: "s", tool: "sleep_tool", input: { ms: 300 } }] })).json.workflow_id;
    const events = await inspect(a, `?workflow=${one}`);
    const two = (await a.post("/v1/workflows", { name: "two", steps: [{ id: "s", tool: "sleep_tool", input: { ms: 50 } }] })).json.workflow_id;
    await until(() => events.some((e) => e.kind === "workflow" && e.state.status === "complete"), 10_000);
    const ids = new Set(events.flatMap((e) => (e.kind === "workflow" ? [e.workflow_id] : e.kind === "actor" || e.kind === "placement" ? [e.workflowId] : [])));
    expect(ids).toEqual(new Set([one]));
    expect(two).not.toBe(one);
  });

  it("wants a read token on a node with tokens (as a header, or a browser's first message; never in the URL), and refuses bad filters", async () => {
    const keys = secureCluster();
    const [a] = await mesh(["--token-key-file", keys.tokenKeyFile]);
    const read = keys.token("read").token;
    /** How the stream answers: "streams" once an event arrives, a close code, or the upgrade's HTTP status. */
    const outcome = (query: string, options: { header?: string; first?: string } = {}) =>
      new Promise<string>((res) => {
        const ws = new WebSocket(`ws://${a.address}/v1/inspect${query}`, options.header ? { headers: { authorization: `Bearer ${options.header}` } } : {});
        sockets.push(ws);
        ws.on("open", () => options.first !== undefined && ws.send(options.first));
        ws.on("message", () => res("streams"));
        ws.on("close", (code, reason) => res(`${code} ${reason}`));
        ws.on("unexpected-response", (_req, r) => res(String(r.statusCode)));
        ws.on("error", () => {});
      });
    expect(await outcome("", { header: read })).toBe("streams");
    expect(await outcome("", { header: "st1.forged.token" })).toBe("401");
    expect(await outcome("", { first: JSON.stringify({ type: "auth", token: read }) })).toBe("streams");
    expect(await outcome("", { first: JSON.stringify({ type: "auth", token: forged(read) }) })).toMatch(/^4401 .*signature/);
    expect(await outcome("", { first: "hello" })).toMatch(/^1008 /);
    expect(await outcome(`?token=${read}`)).toBe("400");
    expect(await outcome("?colour=blue", { header: read })).toBe("400");
    // An inspector that never sends its token is closed once its time is up.
    expect(await outcome("")).toMatch(/^4401 no API token within 5 s/);
  });
});
