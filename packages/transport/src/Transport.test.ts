import { CloseCodes, ShoalError } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, TEST_METHODS, transportPool } from "./testing/fixtures.js";
import type { DialFailure } from "./Transport.js";

const pool = transportPool(TEST_METHODS);
const node = pool.node;
afterEach(pool.closeAll);

describe("Transport", () => {
  it("connects two nodes and answers requests with correlation ids", async () => {
    const a = await node("a");
    const b = await node("b");
    a.transport.handle("echo", (body, from) => ({ body, from: from.name }));
    const conn = await b.transport.dial(a.address);
    expect(conn.peer.name).toBe("a");
    await eventually(() => a.transport.connection(b.identity.id) !== undefined);
    const answers = await Promise.all([1, 2, 3].map((i) => conn.request("echo", { i })));
    expect(answers).toEqual([1, 2, 3].map((i) => ({ body: { i }, from: "b" })));
  });

  it("turns handler failures into typed errors for the caller", async () => {
    const a = await node("a");
    const b = await node("b");
    a.transport.handle("typed", () => {
      throw new ShoalError("SHOAL_ERR_SOMETHING", "named failure", { path: ["x", 1] });
    });
    a.transport.handle("untyped", () => {
      throw new Error("boom");
    });
    a.transport.handle("slow", () => new Promise((r) => setTimeout(r, 500)));
    const conn = await b.transport.dial(a.address);
    await expect(conn.request("typed", null)).rejects.toMatchObject({ code: "SHOAL_ERR_SOMETHING", path: ["x", 1] });
    await expect(conn.request("untyped", null)).rejects.toMatchObject({ code: "SHOAL_ERR_HANDLER_FAILED", message: /boom/ });
    await expect(conn.request("missing", null)).rejects.toMatchObject({ code: "SHOAL_ERR_NO_HANDLER" });
    await expect(conn.request("slow", null, { timeoutMs: 50 })).rejects.toMatchObject({ code: "SHOAL_ERR_REQUEST_TIMEOUT" });
    a.transport.handle("echo", (body) => body);
    await expect(conn.request("echo", "still fine")).resolves.toBe("still fine");
  });

  it("fails pending requests with SHOAL_ERR_PEER_CLOSED when the connection drops", async () => {
    const a = await node("a");
    const b = await node("b");
    a.transport.handle("never", () => new Promise(() => {}));
    const conn = await b.transport.dial(a.address);
    const pending = conn.request("never", null, { timeoutMs: 10_000 });
    await eventually(() => a.transport.connection(b.identity.id) !== undefined);
    a.transport.connection(b.identity.id)?.close(CloseCodes.NORMAL, "bye");
    await expect(pending).rejects.toMatchObject({ code: "SHOAL_ERR_PEER_CLOSED" });
  });

  it("keeps one connection per pair when both nodes dial each other at once", async () => {
    const a = await node("a");
    const b = await node("b");
    await Promise.allSettled([a.transport.dial(b.address), b.transport.dial(a.address)]);
    await eventually(() => a.transport.connections().length === 1 && b.transport.connections().length === 1);
    // Give the losing connection's close time to arrive, then check the survivors still talk.
    await new Promise((r) => setTimeout(r, 100));
    expect(a.transport.connections()).toHaveLength(1);
    expect(b.transport.connections()).toHaveLength(1);
    b.transport.handle("ping", () => "pong");
    await expect(a.transport.request(b.identity.id, "ping", null)).resolves.toBe("pong");
  });

  it("refuses a node dialing itself", async () => {
    const a = await node("a");
    await expect(a.transport.dial(a.address)).rejects.toMatchObject({ code: "SHOAL_ERR_SELF_CONNECTION" });
  });

  it("refuses a peer from another cluster on both sides", async () => {
    const a = await node("a", { cluster: "one" });
    const b = await node("b", { cluster: "two" });
    await expect(b.transport.dial(a.address)).rejects.toMatchObject({ code: "SHOAL_ERR_CLUSTER_MISMATCH" });
    expect(a.transport.connections()).toHaveLength(0);
  });

  it("maintains a connection: redials with backoff after the peer restarts on the same port", async () => {
    const a = await node("a", { backoff: { initialMs: 20, maxMs: 100 } });
    const b = await node("b");
    const failures: DialFailure[] = [];
    a.transport.on("dialFailed", (f) => failures.push(f));
    a.transport.maintain(b.address);
    await eventually(() => a.transport.connection(b.identity.id)?.isOpen === true);
    const port = Number(b.address.split(":")[1]);
    await b.close();
    pool.forget(b);
    await eventually(() => failures.some((f) => f.errno === "ECONNREFUSED"));
    const b2 = await node("b", { port, id: b.identity.id });
    await eventually(() => a.transport.connection(b2.identity.id)?.isOpen === true);
    expect(a.transport.stats.reconnects).toBeGreaterThan(0);
    a.transport.release(b.address);
  });

  it("reports a dial to an address with nothing listening as ECONNREFUSED", async () => {
    const a = await node("a");
    const b = await node("b");
    const address = b.address;
    await b.close();
    pool.forget(b);
    const err = (await a.transport.dial(address).catch((e: unknown) => e)) as ShoalError;
    expect(err).toMatchObject({ code: "SHOAL_ERR_DIAL_FAILED" });
    expect((err.cause as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
  });
});

describe("Transport: casts", () => {
  it("delivers one-way casts to their handler and refuses unknown ones with an error frame", async () => {
    const a = await node("a");
    const b = await node("b");
    const got: unknown[] = [];
    a.transport.handleCast("note", (body, from) => got.push([body, from.name]));
    await b.transport.dial(a.address);
    b.transport.cast(a.identity.id, "note", { x: 1 });
    b.transport.cast(a.identity.id, "nobody-listens", {});
    b.transport.cast(a.identity.id, "note", { x: 2 });
    await eventually(() => got.length === 2);
    expect(got).toEqual([[{ x: 1 }, "b"], [{ x: 2 }, "b"]]);
  });
});
