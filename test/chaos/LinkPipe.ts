import type { Socket } from "node:net";

/** What happens to the bytes one node sends another, one direction. */
export interface LinkFault {
  /**
   * `drop`: nothing gets through; what was sent waits, as TCP would keep retransmitting it, and
   * arrives if the link heals while both ends still hold the connection. `close`: every
   * connection between the two is reset and new ones are reset as soon as the dialer is known.
   */
  cut?: "drop" | "close";
  /** Every chunk arrives this much later. */
  delayMs?: number;
  /** At most this many bytes a second. */
  bytesPerSecond?: number;
}

/** Bytes read but not yet written past which the source is paused (as a full TCP window would). */
const MAX_HELD_BYTES = 1 << 20;
/** A throttled link writes at most this share of a second's bytes at once, so the rate is smooth. */
const THROTTLE_SLICES_PER_SECOND = 20;

/**
 * One direction of a proxied connection: reads `source`, writes `dest`, and asks `fault()` before
 * each write, so a fault set or healed while the connection is open applies at once. A cut pauses
 * the source and keeps what it read; the source ending or failing is passed on only once the
 * bytes before it are, so a peer never learns of a close the network would not have carried.
 */
export class LinkPipe {
  private readonly queue: { data: Buffer; due: number }[] = [];
  private held = 0;
  private sourceDone: "end" | "error" | undefined;
  private timer: NodeJS.Timeout | undefined;
  private waitingForDrain = false;
  private nextFreeAt = 0;
  private closed = false;
  /** Bytes written to `dest`. */
  forwarded = 0;

  constructor(
    private readonly source: Socket,
    private readonly dest: Socket,
    private readonly fault: () => LinkFault | undefined,
    /** Sees each chunk before it is queued (and before `fault()` is asked about it). */
    private readonly inspect: (chunk: Buffer) => void = () => {},
  ) {
    source.on("data", (chunk: Buffer) => {
      this.inspect(chunk);
      this.queue.push({ data: chunk, due: performance.now() + (this.fault()?.delayMs ?? 0) });
      this.held += chunk.length;
      if (this.held >= MAX_HELD_BYTES) source.pause();
      this.pump();
    });
    source.on("end", () => this.finish("end"));
    source.on("error", () => this.finish("error"));
    source.on("close", (hadError) => this.finish(hadError ? "error" : "end"));
    dest.on("drain", () => {
      this.waitingForDrain = false;
      this.pump();
    });
  }

  /** Bytes read from the source and not yet written on. */
  get heldBytes(): number {
    return this.held;
  }

  /** Re-reads the fault: call after it changed. */
  pump(): void {
    if (this.closed || this.timer || this.waitingForDrain) return;
    const fault = this.fault();
    if (fault?.cut) {
      this.source.pause();
      return;
    }
    const now = performance.now();
    while (this.queue.length > 0) {
      const head = this.queue[0] as { data: Buffer; due: number };
      const at = Math.max(head.due, fault?.bytesPerSecond ? this.nextFreeAt : 0);
      if (at > now) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, at - now);
        return;
      }
      let data = head.data;
      if (fault?.bytesPerSecond) {
        const slice = Math.max(1, Math.floor(fault.bytesPerSecond / THROTTLE_SLICES_PER_SECOND));
        if (data.length > slice) {
          head.data = data.subarray(slice);
          data = data.subarray(0, slice);
        } else this.queue.shift();
        this.nextFreeAt = now + (data.length / fault.bytesPerSecond) * 1000;
      } else this.queue.shift();
      this.held -= data.length;
      this.forwarded += data.length;
      if (!this.dest.destroyed && !this.dest.write(data)) {
        this.waitingForDrain = true;
        return;
      }
    }
    if (this.sourceDone && !this.closed) {
      this.closed = true;
      if (this.sourceDone === "error") this.dest.resetAndDestroy();
      else this.dest.end();
      return;
    }
    if (this.held < MAX_HELD_BYTES && !this.source.destroyed) this.source.resume();
  }

  /** Drops everything and resets the destination: what `close` does to a live connection. */
  reset(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.held = 0;
    if (!this.dest.destroyed) this.dest.resetAndDestroy();
  }

  private finish(how: "end" | "error"): void {
    if (this.sourceDone === "error") return;
    this.sourceDone = how;
    this.pump();
  }
}
