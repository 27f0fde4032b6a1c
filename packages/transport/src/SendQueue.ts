import { ShoalError, monotonicNow } from "@shoal/protocol";

export interface SendQueueOptions {
  /** While the socket holds more unsent bytes than this, new frames wait in the queue. */
  highWaterBytes?: number;
  /** The queue never holds more than this; past it a frame is dropped or refused. */
  maxQueueBytes?: number;
}

export interface SendSink {
  /** Bytes handed to the socket that the kernel has not taken yet (ws's `bufferedAmount`). */
  bufferedAmount(): number;
  /** Hands bytes to the socket; `written` runs once they left the process. */
  write(bytes: Uint8Array, written: () => void): void;
}

export type SendOutcome = "sent" | "queued" | "dropped";

/**
 * Bounded, per-peer outgoing queue. A peer that stops reading fills the kernel buffers, then ws's
 * `bufferedAmount`, then this queue up to `maxQueueBytes`; after that the sender gets
 * SHOAL_ERR_BACKPRESSURE for frames that matter and droppable frames (heartbeats, gossip, which
 * the next round replaces) are dropped. Memory held for one peer is thus at most
 * `highWaterBytes + maxQueueBytes` plus one frame.
 */
export class SendQueue {
  readonly highWaterBytes: number;
  readonly maxQueueBytes: number;
  private readonly queue: Uint8Array[] = [];
  private bytes = 0;
  /** When the queue last refused a frame for lack of room and has not drained since. */
  private fullSinceMs: number | undefined;

  constructor(
    private readonly sink: SendSink,
    options: SendQueueOptions = {},
  ) {
    this.highWaterBytes = options.highWaterBytes ?? 1024 * 1024;
    this.maxQueueBytes = options.maxQueueBytes ?? 8 * 1024 * 1024;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  get length(): number {
    return this.queue.length;
  }

  /** How long the queue has been refusing frames, 0 when it has room. */
  fullForMs(now = monotonicNow()): number {
    return this.fullSinceMs === undefined ? 0 : now - this.fullSinceMs;
  }

  push(frame: Uint8Array, droppable: boolean): SendOutcome {
    if (this.queue.length === 0 && this.sink.bufferedAmount() < this.highWaterBytes) {
      this.sink.write(frame, this.flush);
      return "sent";
    }
    if (this.bytes + frame.length > this.maxQueueBytes) {
      this.fullSinceMs ??= monotonicNow();
      if (droppable) return "dropped";
      throw new ShoalError(
        "SHOAL_ERR_BACKPRESSURE",
        `send queue to peer is full (${this.bytes} bytes queued, limit ${this.maxQueueBytes}): the peer is not reading`,
      );
    }
    this.queue.push(frame);
    this.bytes += frame.length;
    return "queued";
  }

  /** Frees the queue; frames still in it are never sent. */
  clear(): void {
    this.queue.length = 0;
    this.bytes = 0;
  }

  private readonly flush = (): void => {
    let moved = false;
    while (this.queue.length > 0 && this.sink.bufferedAmount() < this.highWaterBytes) {
      const next = this.queue.shift() as Uint8Array;
      this.bytes -= next.length;
      this.sink.write(next, this.flush);
      moved = true;
    }
    if (moved) this.fullSinceMs = undefined;
  };
}
