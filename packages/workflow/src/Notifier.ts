import type { Logger, WorkflowEventName } from "@shoal/protocol";
import { createBackoff } from "@shoal/transport";

export interface NotifyTarget {
  url: string;
  on?: WorkflowEventName[];
}

export interface WorkflowNotice {
  event: WorkflowEventName;
  workflow_id: string;
  name: string;
  at: string;
  [key: string]: unknown;
}

/**
 * Events of one workflow waiting to be posted; past this, new ones are logged but not posted. A
 * webhook that hangs (4 tries of 5 s each per event) must not make a workflow of thousands of
 * steps hold all of their events.
 */
export const MAX_QUEUED_NOTICES = 1_000;

/**
 * Posts workflow and step events to a webhook, in order, with retries (4 tries, backoff), and
 * logs every event whether or not anyone listens. A webhook that stays down costs log lines,
 * never the workflow. Its answer's body is never read.
 */
export class Notifier {
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private dropped = 0;
  private readonly log: Logger;

  constructor(
    private readonly target: NotifyTarget | undefined,
    logger: Logger,
    private readonly tries = 4,
  ) {
    this.log = logger.child({ component: "notify" });
  }

  notify(notice: WorkflowNotice): void {
    this.log.info(notice, `workflow event ${notice.event}`);
    const target = this.target;
    if (!target) return;
    const wanted = target.on ?? ["workflow.started", "workflow.finished"];
    if (!wanted.includes(notice.event)) return;
    if (this.queued >= MAX_QUEUED_NOTICES) {
      this.dropped++;
      if (this.dropped === 1 || this.dropped % MAX_QUEUED_NOTICES === 0) {
        this.log.warn({ url: target.url, event: notice.event, dropped: this.dropped, queued: this.queued }, "webhook is behind; events past the queue are not posted");
      }
      return;
    }
    this.queued++;
    this.chain = this.chain.then(() => this.post(target.url, notice)).then(() => {
      this.queued--;
    });
  }

  /** Resolves when every notice so far has been posted or given up on. */
  flushed(): Promise<void> {
    return this.chain;
  }

  private async post(url: string, notice: WorkflowNotice): Promise<void> {
    const backoff = createBackoff({ initialMs: 100, maxMs: 2_000 });
    for (let attempt = 1; attempt <= this.tries; attempt++) {
      try {
        const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(notice), signal: AbortSignal.timeout(5_000) });
        // Only the status matters: whatever the webhook sends back is not read into memory.
        await res.body?.cancel().catch(() => {});
        if (res.ok) return;
        this.log.warn({ url, status: res.status, attempt, event: notice.event }, "webhook answered with an error");
      } catch (err) {
        this.log.warn({ url, err: (err as Error).message, attempt, event: notice.event }, "webhook unreachable");
      }
      if (attempt < this.tries) await new Promise((r) => setTimeout(r, backoff.next()));
    }
    this.log.error({ url, event: notice.event, tries: this.tries }, "webhook gave up");
  }
}
