import { type Server, type Socket, connect, createServer } from "node:net";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { until } from "../support/shoalProcess.js";
import { FaultProxy } from "./FaultProxy.js";

/** The stand-in protocol of these tests: a dialer's first line is its name. */
const firstLine = (bytes: Buffer) => {
  const end = bytes.indexOf("\n");
  return end < 0 ? undefined : bytes.subarray(0, end).toString();
};

/** A node stand-in: keeps what each connection sent it, and can answer on it. */
interface Endpoint {
  port: number;
  conns: { socket: Socket; got: Buffer; ended: boolean; closed: boolean }[];
  server: Server;
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function endpoint(options: { echo?: boolean } = {}): Promise<Endpoint> {
  const ep: Endpoint = { port: 0, conns: [], server: createServer({ allowHalfOpen: true }) };
  ep.server.on("connection", (socket) => {
    const conn = { socket, got: Buffer.alloc(0), ended: false, closed: false };
    ep.conns.push(conn);
    socket.on("data", (d: Buffer) => {
      conn.got = Buffer.concat([conn.got, d]);
      if (options.echo) socket.write(d);
    });
    socket.on("end", () => {
      conn.ended = true;
      socket.end();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      conn.closed = true;
    });
  });
  await new Promise<void>((resolve) => ep.server.listen(0, "127.0.0.1", resolve));
  ep.port = (ep.server.address() as { port: number }).port;
  cleanup.push(() => {
    for (const c of ep.conns) c.socket.destroy();
    return new Promise((resolve) => ep.server.close(() => resolve()));
  });
  return ep;
}

/** A dialer through the proxy that names itself first, keeping what comes back. */
async function dial(proxy: FaultProxy, to: string, as: string) {
  const [host, port] = proxy.address(to).split(":") as [string, string];
  const socket = connect({ host, port: Number(port), allowHalfOpen: true });
  const state = { socket, got: Buffer.alloc(0), ended: false, closed: false, error: undefined as string | undefined };
  socket.on("data", (d: Buffer) => {
    state.got = Buffer.concat([state.got, d]);
  });
  socket.on("end", () => {
    state.ended = true;
  });
  socket.on("error", (err: NodeJS.ErrnoException) => {
    state.error = err.code;
  });
  socket.on("close", () => {
    state.closed = true;
  });
  await new Promise<void>((resolve) => socket.once("connect", resolve));
  socket.write(`${as}\n`);
  cleanup.push(() => {
    socket.destroy();
  });
  return state;
}

async function proxyFor(targets: Record<string, Endpoint>): Promise<FaultProxy> {
  const proxy = new FaultProxy(firstLine);
  cleanup.push(() => proxy.close());
  for (const [name, ep] of Object.entries(targets)) await proxy.listen(name, ep.port);
  return proxy;
}

const named = async (proxy: FaultProxy, from: string) => until(() => proxy.connections().some((c) => c.from === from), 2_000, () => `${from} never named`);
const settle = () => new Promise((r) => setTimeout(r, 150));

describe("FaultProxy", () => {
  it("passes the bytes both ways unchanged and in order, whatever the delay and throttle", async () => {
    const b = await endpoint({ echo: true });
    const proxy = await proxyFor({ b });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 5_000 }), { minLength: 1, maxLength: 12 }),
        fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }),
        fc.option(fc.integer({ min: 50_000, max: 500_000 }), { nil: undefined }),
        async (chunks, delayMs, bytesPerSecond) => {
          proxy.set("a", "b", { delayMs, bytesPerSecond });
          proxy.set("b", "a", { delayMs, bytesPerSecond });
          const a = await dial(proxy, "b", "a");
          for (const c of chunks) a.socket.write(c);
          const sent = Buffer.concat([Buffer.from("a\n"), ...chunks]);
          await until(() => a.got.length >= sent.length, 5_000, () => `${a.got.length} of ${sent.length} bytes came back`);
          expect(a.got.equals(sent)).toBe(true);
          a.socket.destroy();
        },
      ),
      { numRuns: 15, seed: 12 },
    );
  });

  it("a dropped direction holds its bytes and closes nothing; the other way still flows; heal delivers them in order", async () => {
    const b = await endpoint();
    const proxy = await proxyFor({ b });
    const a = await dial(proxy, "b", "a");
    await named(proxy, "a");
    await until(() => b.conns[0]?.got.toString() === "a\n", 2_000);
    const atB = b.conns[0] as Endpoint["conns"][number];

    proxy.set("a", "b", { cut: "drop" });
    a.socket.write("one ");
    a.socket.write("two");
    atB.socket.write("back");
    await until(() => a.got.toString() === "back", 2_000, () => "b to a was cut too");
    await settle();
    expect(atB.got.toString()).toBe("a\n");
    expect(proxy.connections()).toMatchObject([{ from: "a", to: "b" }]);

    // a gives up on the connection: b must not hear of it while the link is down.
    a.socket.end();
    await settle();
    expect(atB.ended).toBe(false);

    proxy.heal();
    await until(() => atB.ended, 2_000, () => "the close never arrived");
    expect(atB.got.toString()).toBe("a\none two");
  });

  it("faults are per pair: a partition between {a} and {b, c} leaves c's link to b alone", async () => {
    const b = await endpoint({ echo: true });
    const proxy = await proxyFor({ b });
    const a = await dial(proxy, "b", "a");
    const c = await dial(proxy, "b", "c");
    await named(proxy, "a");
    await named(proxy, "c");
    await until(() => a.got.toString() === "a\n" && c.got.toString() === "c\n", 2_000);

    proxy.partition([["a"], ["b", "c"]]);
    a.socket.write("x");
    c.socket.write("y");
    await until(() => c.got.toString() === "c\ny", 2_000);
    await settle();
    expect(a.got.toString()).toBe("a\n");
    // A new dialer from the cut side is held too, once it is known.
    const a2 = await dial(proxy, "b", "a");
    await settle();
    expect(b.conns[2]?.got.length).toBe(0);
    expect(a2.got.length).toBe(0);

    proxy.heal();
    await until(() => a.got.toString() === "a\nx" && a2.got.toString() === "a\n", 2_000);
  });

  it("cut one way only: what b sends a is held, what a sends b flows", async () => {
    const b = await endpoint({ echo: true });
    const proxy = await proxyFor({ b });
    const a = await dial(proxy, "b", "a");
    await named(proxy, "a");
    await until(() => a.got.toString() === "a\n", 2_000);
    proxy.set("b", "a", { cut: "drop" });
    a.socket.write("ping");
    await until(() => b.conns[0]?.got.toString() === "a\nping", 2_000, () => "a to b was cut too");
    await settle();
    expect(a.got.toString()).toBe("a\n");
    proxy.set("b", "a", undefined);
    await until(() => a.got.toString() === "a\nping", 2_000);
  });

  it("close resets the live connections of the pair, and a new one as soon as its dialer is known", async () => {
    const b = await endpoint({ echo: true });
    const proxy = await proxyFor({ b });
    const a = await dial(proxy, "b", "a");
    const c = await dial(proxy, "b", "c");
    await named(proxy, "a");
    await named(proxy, "c");
    proxy.set("*", "a", { cut: "close" });
    await until(() => a.closed && a.error === "ECONNRESET", 2_000, () => `a: closed ${a.closed}, error ${a.error}`);
    await until(() => b.conns[0]?.closed === true, 2_000);
    const again = await dial(proxy, "b", "a");
    await until(() => again.closed, 2_000);
    expect(again.got.length).toBe(0);
    c.socket.write("still");
    await until(() => c.got.toString() === "c\nstill", 2_000);
    expect(c.closed).toBe(false);
  });

  it("delay and throttle slow a link by what they say", async () => {
    const b = await endpoint({ echo: true });
    const proxy = await proxyFor({ b });
    const a = await dial(proxy, "b", "a");
    await until(() => a.got.length === 2, 2_000);

    proxy.set("a", "b", { delayMs: 200 });
    let start = performance.now();
    a.socket.write("d");
    await until(() => a.got.length === 3, 2_000);
    const delayed = performance.now() - start;
    expect(delayed).toBeGreaterThanOrEqual(195);
    expect(delayed).toBeLessThan(600);

    proxy.set("a", "b", { bytesPerSecond: 100_000 });
    start = performance.now();
    a.socket.write(Buffer.alloc(50_000, 1));
    await until(() => a.got.length === 3 + 50_000, 5_000);
    const throttled = performance.now() - start;
    expect(throttled).toBeGreaterThanOrEqual(440);
    expect(throttled).toBeLessThan(1_500);
  });

  it("a dialer to a node that is down is reset at once", async () => {
    const b = await endpoint();
    const proxy = await proxyFor({ b });
    await new Promise((resolve) => b.server.close(resolve));
    const a = await dial(proxy, "b", "a");
    await until(() => a.closed, 2_000);
    expect(a.error).toBe("ECONNRESET");
  });
});
