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
 * Posts workflow and step events to a webhook, in order, with retries (4 tries, backoff), and
 * logs every event whether or not anyone listens. A webhook that stays down costs log lines,
 * never the workflow.
 */
export class Notifier {
  private chain: Promise<void> = Promise.resolve();
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
    this.chain = this.chain.then(() => this.post(target.url, notice));
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
