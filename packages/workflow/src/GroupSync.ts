import { closeSync, fdatasync, fdatasyncSync, openSync } from "node:fs";

/**
 * Makes what SQLite wrote to a WAL file durable, for many writers per sync (group commit).
 * The store commits with `synchronous=NORMAL` (a commit is in the OS's page cache, not yet on
 * disk) and asks `synced()` where a promise is made: everyone who asks while no sync runs is
 * released by the next one, everyone who asks while one runs by the one after it. The sync
 * runs on libuv's thread pool, so the event loop goes on taking submissions meanwhile; those
 * are the next group. A commit that nobody waits for is synced within `lazyMs` anyway, so a
 * power cut loses at most that much progress.
 *
 * Sound because SQLite in WAL mode with NORMAL syncs the WAL before each checkpoint and the
 * database file after it: a committed frame is either still in the WAL (this sync covers it:
 * an fdatasync of any descriptor of the file flushes all of its dirty pages) or in a database
 * file that was synced before the WAL was reused.
 */
export class GroupSync {
  /** Waiting for the next sync. */
  private waiting: { resolve(): void; reject(err: Error): void }[] = [];
  private running = false;
  private closed = false;
  private lazy: NodeJS.Timeout | undefined;
  /** fdatasync calls made. */
  syncs = 0;

  constructor(
    private readonly fd: number,
    private readonly options: { lazyMs: number; failed(err: Error): void },
  ) {}

  /** For the WAL of `dbFile`, which must exist (the store has written to it). */
  static forWal(dbFile: string, options: { lazyMs: number; failed(err: Error): void }): GroupSync {
    return new GroupSync(openSync(`${dbFile}-wal`, "r"), options);
  }

  /** Resolves once everything committed before the call is on disk. */
  synced(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (!this.running) this.start();
    });
  }

  /** A commit nobody waits for: it is synced within `lazyMs`, with whatever comes before then. */
  wrote(): void {
    if (this.lazy || this.closed) return;
    this.lazy = setTimeout(() => {
      this.lazy = undefined;
      if (!this.running) this.start();
    }, this.options.lazyMs).unref();
  }

  /** A last sync, then no more (the store closes the database next). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.lazy);
    const waiting = this.waiting.splice(0);
    try {
      fdatasyncSync(this.fd);
      this.syncs++;
      for (const w of waiting) w.resolve();
    } catch (err) {
      for (const w of waiting) w.reject(err as Error);
    }
    // A sync still on the thread pool uses the descriptor: it is closed once that one is back.
    if (!this.running) closeSync(this.fd);
  }

  private start(): void {
    this.running = true;
    clearTimeout(this.lazy);
    this.lazy = undefined;
    // The rest of this turn's commits join the group.
    setImmediate(() => {
      if (this.closed) return this.finish();
      const group = this.waiting.splice(0);
      fdatasync(this.fd, (err) => {
        this.syncs++;
        if (err) {
          for (const w of group) w.reject(err);
          if (!this.closed) this.options.failed(err);
        } else {
          for (const w of group) w.resolve();
        }
        this.finish();
      });
    });
  }

  private finish(): void {
    this.running = false;
    if (this.closed) closeSync(this.fd);
    else if (this.waiting.length > 0) this.start();
  }
}
