/**
 * Counts connections that have not finished the handshake, in all and per remote address, so
 * that nobody can hold a node's sockets (and the memory behind them) without proving anything.
 */
export class PendingConnections {
  private readonly byAddress = new Map<string, number>();
  private total = 0;

  constructor(private readonly limits: { total: number; perAddress: number }) {}

  get size(): number {
    return this.total;
  }

  /** A release function for the new connection, or a reason why it is refused. */
  admit(address: string): { release: () => void } | { refused: string } {
    const here = this.byAddress.get(address) ?? 0;
    if (this.total >= this.limits.total) return { refused: `${this.total} connections are still in the handshake (--max-pending-connections)` };
    if (here >= this.limits.perAddress) {
      return { refused: `${here} connections from ${address} are still in the handshake (--max-pending-per-address)` };
    }
    this.total++;
    this.byAddress.set(address, here + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.byAddress.get(address) ?? 1) - 1;
        if (left > 0) this.byAddress.set(address, left);
        else this.byAddress.delete(address);
      },
    };
  }
}
