import type { NodeProcess } from "../support/shoalProcess.js";

/** How long a restarted node has to answer /healthz before it counts as a failed start. */
const START_TIMEOUT_MS = 20_000;
/** Pause between a failed start and the next try, as a supervisor (systemd RestartSec) would. */
const RETRY_AFTER_MS = 1_000;

/**
 * Does to the nodes of a chaos run what the faults say, and keeps track of which are fit to be
 * sent requests: not killed, not stopped, started again and answering. A node that fails to start
 * is started again a second later, as a supervisor would, and every failed start is counted with
 * the last line of its stderr.
 */
export class NodeKeeper {
  private readonly unfit = new Set<NodeProcess>();
  private readonly starting = new Map<NodeProcess, Promise<void>>();
  readonly failedStarts: { node: string; why: string }[] = [];
  private stopped = false;

  constructor(readonly nodes: NodeProcess[]) {}

  /** Nodes that are up as far as this run knows. */
  fit(): NodeProcess[] {
    return this.nodes.filter((n) => !this.unfit.has(n));
  }

  async kill(node: NodeProcess): Promise<void> {
    this.unfit.add(node);
    await node.kill("SIGKILL");
  }

  /** Starts the node again (same name, port and data dir) and resolves once it answers. */
  restart(node: NodeProcess): Promise<void> {
    const started = this.startUntilUp(node).finally(() => this.starting.delete(node));
    this.starting.set(node, started);
    return started;
  }

  hang(node: NodeProcess): void {
    this.unfit.add(node);
    node.signal("SIGSTOP");
  }

  resume(node: NodeProcess): void {
    node.signal("SIGCONT");
    this.unfit.delete(node);
  }

  /** Resolves once no start is under way. */
  async settled(): Promise<void> {
    while (this.starting.size > 0) await Promise.all(this.starting.values());
  }

  /** Stops retrying starts (the run is over). */
  stop(): void {
    this.stopped = true;
  }

  private async startUntilUp(node: NodeProcess): Promise<void> {
    while (!this.stopped) {
      const skip = node.stderr.length;
      node.restart();
      const exited = node.exit().then(() => false);
      const up = node.ready(START_TIMEOUT_MS).then(
        () => true,
        () => false,
      );
      if (await Promise.race([up, exited])) {
        this.unfit.delete(node);
        return;
      }
      await node.kill("SIGKILL");
      const why = node.stderr.slice(skip).trim().split("\n").at(-1) || "no answer on /healthz in time";
      this.failedStarts.push({ node: node.name, why });
      await new Promise((r) => setTimeout(r, RETRY_AFTER_MS));
    }
  }
}
