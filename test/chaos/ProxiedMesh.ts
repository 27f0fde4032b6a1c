import { FaultProxy } from "./FaultProxy.js";
import { meshDialerName } from "./meshDialerName.js";
import { NodeProcess, freePort, until } from "../support/shoalProcess.js";

/** Resolves once the node answers; fails at once, with its stderr, if it exits first. */
async function up(node: NodeProcess): Promise<void> {
  const exited = node.exit().then((code) => {
    throw new Error(`${node.name} exited with ${code} before it was up: ${node.stderr.trim().split("\n").at(-1)}`);
  });
  await Promise.race([node.ready(), exited]);
}

export interface ProxiedNodeSpec {
  name: string;
  /** Flags for this node only. */
  extra?: string[];
}

export interface ProxiedMeshOptions {
  /** Flags for every node. */
  extra?: string[];
  env?: Record<string, string>;
  /** Each node goes in here as soon as it runs, for the caller's cleanup. */
  started?: NodeProcess[];
}

/**
 * Real `shoal node` processes whose links to each other all pass through one FaultProxy: each
 * advertises its proxy port (`--advertise`) and joins the first through it, so the proxy sees
 * every byte between two nodes and the test can cut, slow or heal any of them. The test itself
 * talks to each node's real port.
 */
export class ProxiedMesh {
  readonly proxy = new FaultProxy(meshDialerName);
  readonly nodes: NodeProcess[] = [];

  static async start(specs: ProxiedNodeSpec[], options: ProxiedMeshOptions = {}): Promise<ProxiedMesh> {
    const mesh = new ProxiedMesh();
    for (const spec of specs) await mesh.proxy.listen(spec.name);
    for (const spec of specs) {
      const port = await freePort();
      mesh.proxy.forward(spec.name, port);
      const seed = specs[0] as ProxiedNodeSpec;
      const node = new NodeProcess({
        name: spec.name,
        port,
        join: spec === seed ? [] : [mesh.proxy.address(seed.name)],
        extra: ["--advertise", mesh.proxy.address(spec.name), ...(options.extra ?? []), ...(spec.extra ?? [])],
        ...(options.env && { env: options.env }),
      });
      mesh.nodes.push(node);
    }
    // The seed first, so that the others find it at once rather than after a redial.
    const [first, ...rest] = mesh.nodes as [NodeProcess, ...NodeProcess[]];
    for (const n of [first, ...rest]) {
      n.start();
      options.started?.push(n);
      if (n === first) await up(first);
    }
    await Promise.all(rest.map(up));
    await mesh.whole();
    return mesh;
  }

  node(name: string): NodeProcess {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no node ${name} in this mesh`);
    return node;
  }

  /** Waits until each of `among` sees all of them up. */
  async whole(among: NodeProcess[] = this.nodes, timeoutMs = 15_000): Promise<void> {
    const names = among.map((n) => n.name);
    for (const n of among) {
      await until(
        async () => {
          const up = new Set((await n.nodes()).filter((r) => r.status === "up").map((r) => r.name));
          return names.every((name) => up.has(name));
        },
        timeoutMs,
        () => `${n.name} does not see all of ${names.join(", ")} up`,
      );
    }
  }

  /**
   * Waits until every node counts all of them towards a majority (as it logs it). A member counts
   * once it has been up a while on a link of its own (workflow README, Partitions): before that a
   * split runs on both sides, as a 2-node mesh would.
   */
  async counted(timeoutMs = 15_000): Promise<void> {
    const all = (l: Record<string, unknown>) => l.msg === "a majority is counted among these members now" && l.members === this.nodes.length;
    await until(() => this.nodes.every((n) => n.logsMatching(all).length > 0), timeoutMs, () => `not every node counts all ${this.nodes.length} towards a majority`);
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill("SIGKILL")));
    await this.proxy.close();
  }
}
