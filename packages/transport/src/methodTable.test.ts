import { afterEach, describe, expect, it } from "vitest";
import { ForbiddenMessages } from "./ForbiddenMessages.js";
import { eventually, rawPeer, recordingLogger, TEST_METHODS, transportPool } from "./testing/fixtures.js";
import { createTransportStats } from "./TransportStats.js";

const pool = transportPool(TEST_METHODS);
afterEach(pool.closeAll);

const ownerRule = (body: { owner: string }, from: { id: string }) => (body.owner === from.id ? undefined : `owner is ${body.owner}`);

describe("Transport: the method table", () => {
  it("parses request bodies with the method's schema before the handler sees them", async () => {
    const a = await pool.node("a");
    const b = await pool.node("b");
    const seen: unknown[] = [];
    a.transport.handle("strict", (body) => {
      seen.push(body);
      return body.name;
    });
    const conn = await b.transport.dial(a.address);
    await expect(conn.request("strict", { id: "x", name: "n", extra: 1 })).resolves.toBe("n");
    await expect(conn.request("strict", { id: "x" })).rejects.toMatchObject({ code: "SHOAL_ERR_BAD_SCHEMA", path: ["name"], message: /^strict body: name/ });
    // Keys the schema does not know never reach the handler.
    expect(seen).toEqual([{ id: "x", name: "n" }]);
  });

  it("an answer that fails the response schema is an error for the caller, not a value", async () => {
    const a = await pool.node("a");
    const b = await pool.node("b");
    let answer: unknown = 7;
    a.transport.handle("numbered", () => answer as number);
    await b.transport.dial(a.address);
    await eventually(() => b.transport.connection(a.identity.id) !== undefined);
    await expect(b.transport.request(a.identity.id, "numbered", null)).resolves.toBe(7);
    answer = "seven";
    await expect(b.transport.request(a.identity.id, "numbered", null)).rejects.toMatchObject({ code: "SHOAL_ERR_BAD_SCHEMA", message: /the answer of a to numbered/ });
  });

  it("refuses a request its sender rule does not allow with SHOAL_ERR_PEER_FORBIDDEN, counted, logged once per peer", async () => {
    const lines: Record<string, unknown>[] = [];
    const a = await pool.node("a", { logger: recordingLogger(lines) });
    const b = await pool.node("b");
    let calls = 0;
    a.transport.handle(
      "owned",
      (body) => {
        calls++;
        return body.owner;
      },
      ownerRule,
    );
    const conn = await b.transport.dial(a.address);
    await expect(conn.request("owned", { owner: b.identity.id })).resolves.toBe(b.identity.id);
    for (let i = 0; i < 5; i++) {
      await expect(conn.request("owned", { owner: "someone-else" })).rejects.toMatchObject({ code: "SHOAL_ERR_PEER_FORBIDDEN", message: /b may not send owned: owner is someone-else/ });
    }
    expect(calls).toBe(1);
    expect(a.transport.stats.forbiddenMessages).toBe(5);
    const logged = lines.filter((l) => l.code === "SHOAL_ERR_PEER_FORBIDDEN");
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: "warn", peer: "b", peerId: b.identity.id, what: "owned", reason: "owner is someone-else" });
  });

  it("answers a forbidden cast with an error frame and never calls its handler", async () => {
    const a = await pool.node("a");
    const got: unknown[] = [];
    a.transport.handleCast("owned-note", (body) => got.push(body), ownerRule);
    const peer = await rawPeer(a.address, { cluster: "test" });
    await peer.handshake();
    peer.send({ t: "cast", method: "owned-note", body: { owner: "not-me" } });
    const error = await peer.next("error");
    expect(error).toMatchObject({ error: { code: "SHOAL_ERR_PEER_FORBIDDEN" } });
    peer.send({ t: "cast", method: "owned-note", body: { owner: peer.identity.id } });
    await eventually(() => got.length === 1);
    expect(a.transport.stats.forbiddenMessages).toBe(1);
  });

  it("will not register a handler for a method outside the table, or a ruled one without its rule", async () => {
    const a = await pool.node("a");
    // @ts-expect-error: not a method of the table
    expect(() => a.transport.handle("made-up", () => null)).toThrow(/not a request method/);
    // @ts-expect-error: a cast is not a request
    expect(() => a.transport.handle("note", () => null)).toThrow(/not a request method/);
    // @ts-expect-error: "owned" may only be sent by its owner, so its rule is required
    expect(() => a.transport.handle("owned", () => "x")).toThrow(/needs the rule/);
  });
});

describe("ForbiddenMessages", () => {
  it("logs one line per peer per window and says how many it held back", () => {
    const lines: Record<string, unknown>[] = [];
    const stats = createTransportStats();
    let now = 0;
    const refusals = new ForbiddenMessages(recordingLogger(lines), stats, { windowMs: 60_000, now: () => now });
    const p = (id: string) => ({ id, name: id, address: "127.0.0.1:1", capabilities: [], tools: [], slots: 0 });
    for (let i = 0; i < 100; i++) refusals.refuse(p("x"), "m", "r");
    refusals.refuse(p("y"), "m", "r");
    expect(lines.map((l) => l.peer)).toEqual(["x", "y"]);
    now = 60_000;
    refusals.refuse(p("x"), "m", "r");
    expect(lines.at(-1)).toMatchObject({ peer: "x", suppressedBefore: 99 });
    expect(stats.forbiddenMessages).toBe(102);
  });

});
