import { type Server, type Socket, connect, createServer } from "node:net";
import { type LinkFault, LinkPipe } from "./LinkPipe.js";

export type { LinkFault } from "./LinkPipe.js";

/**
 * Names the dialer of a connection from the bytes it sent so far: `undefined` while more are
 * needed, `null` when it cannot tell (the connection is then from nobody in particular, and
 * only faults set for `"*"` apply to it).
 */
export type Identify = (bytes: Buffer) => string | null | undefined;

/** Bytes a dialer may send before `identify` has to have made up its mind. */
const MAX_IDENTIFY_BYTES = 64 * 1024;

interface Link {
  from: string | undefined;
  to: string;
  client: Socket;
  server: Socket;
  pipes: LinkPipe[];
}

/**
 * A TCP proxy between the nodes of a test mesh, one listening port per node forwarding to the
 * node's real port; a node advertises its proxy port, so every byte between two nodes passes
 * here. Faults are per direction and per pair of nodes (by name, `"*"` for any), take effect on
 * live connections at once, and are healed by `heal()`. The network it stands for is a real
 * one: a dropped link holds the bytes and closes nothing, so only the nodes' own timeouts see it.
 */
export class FaultProxy {
  private readonly listeners = new Map<string, { server: Server; port: number; target: number | undefined }>();
  private readonly faults = new Map<string, LinkFault>();
  private readonly live = new Set<Link>();

  constructor(private readonly identify: Identify) {}

  /**
   * Starts forwarding a port of its own to `name`'s real port (given here or later with
   * `forward`: taking the proxy port first keeps a free-port probe for the node from picking it).
   * Resolves with the proxy port.
   */
  async listen(name: string, targetPort?: number): Promise<number> {
    const server = createServer({ allowHalfOpen: true }, (client) => {
      const target = this.listeners.get(name)?.target;
      if (target === undefined) client.resetAndDestroy();
      else this.accept(client, name, target);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const { port } = server.address() as { port: number };
    this.listeners.set(name, { server, port, target: targetPort });
    return port;
  }

  /** Where connections to `name`'s proxy port go from now on. */
  forward(name: string, targetPort: number): void {
    const listener = this.listeners.get(name);
    if (!listener) throw new Error(`the proxy does not forward to ${name}`);
    listener.target = targetPort;
  }

  /** The address peers dial to reach `name` through the proxy. */
  address(name: string): string {
    const listener = this.listeners.get(name);
    if (!listener) throw new Error(`the proxy does not forward to ${name}`);
    return `127.0.0.1:${listener.port}`;
  }

  /** Sets (or with `undefined` clears) what happens to what `from` sends `to`. */
  set(from: string, to: string, fault: LinkFault | undefined): void {
    if (fault && (fault.cut || fault.delayMs || fault.bytesPerSecond)) this.faults.set(`${from}>${to}`, fault);
    else this.faults.delete(`${from}>${to}`);
    this.apply();
  }

  /** Cuts both ways every link between nodes on different sides; links inside a side are kept. */
  partition(sides: string[][], cut: "drop" | "close" = "drop"): void {
    for (const [i, side] of sides.entries()) {
      for (const other of sides.slice(i + 1)) {
        for (const a of side) {
          for (const b of other) {
            this.faults.set(`${a}>${b}`, { cut });
            this.faults.set(`${b}>${a}`, { cut });
          }
        }
      }
    }
    this.apply();
  }

  /** Clears every fault: held bytes go on, in order. */
  heal(): void {
    this.faults.clear();
    this.apply();
  }

  /** The fault on what `from` sends `to`: the pair's own, else `from` to any, any to `to`, any to any. */
  faultOf(from: string | undefined, to: string | undefined): LinkFault | undefined {
    const keys = [from && to && `${from}>${to}`, from && `${from}>*`, to && `*>${to}`, "*>*"];
    for (const key of keys) {
      const fault = key ? this.faults.get(key) : undefined;
      if (fault) return fault;
    }
    return undefined;
  }

  /** Open connections: who dialed whom (`from` undefined until known), and bytes held each way. */
  connections(): { from: string | undefined; to: string; heldBytes: number }[] {
    return [...this.live].map((l) => ({ from: l.from, to: l.to, heldBytes: l.pipes.reduce((n, p) => n + p.heldBytes, 0) }));
  }

  async close(): Promise<void> {
    for (const link of this.live) for (const pipe of link.pipes) pipe.reset();
    this.live.clear();
    await Promise.all([...this.listeners.values()].map(({ server }) => new Promise((resolve) => server.close(resolve))));
    this.listeners.clear();
  }

  private accept(client: Socket, to: string, targetPort: number): void {
    const server = connect({ host: "127.0.0.1", port: targetPort, allowHalfOpen: true });
    const link: Link = { from: undefined, to, client, server, pipes: [] };
    let seen: Buffer | undefined = Buffer.alloc(0);
    const identify = (chunk: Buffer) => {
      if (!seen) return;
      seen = Buffer.concat([seen, chunk]);
      const name = seen.length > MAX_IDENTIFY_BYTES ? null : this.identify(seen);
      if (name === undefined) return;
      seen = undefined;
      link.from = name ?? undefined;
      if (this.closes(link)) queueMicrotask(() => this.reset(link));
    };
    link.pipes = [
      new LinkPipe(client, server, () => this.faultOf(link.from, link.to), identify),
      new LinkPipe(server, client, () => this.faultOf(link.to, link.from)),
    ];
    this.live.add(link);
    let open = 2;
    const gone = () => {
      if (--open === 0) this.live.delete(link);
    };
    client.once("close", gone);
    server.once("close", gone);
  }

  private closes(link: Link): boolean {
    return this.faultOf(link.from, link.to)?.cut === "close" || this.faultOf(link.to, link.from)?.cut === "close";
  }

  private reset(link: Link): void {
    for (const pipe of link.pipes) pipe.reset();
    this.live.delete(link);
  }

  private apply(): void {
    for (const link of [...this.live]) {
      if (this.closes(link)) this.reset(link);
      else for (const pipe of link.pipes) pipe.pump();
    }
  }
}
