import { createHmac, randomBytes } from "node:crypto";
import { type Logger, type WebhookNotice, type WebhookPayload, type WorkflowEventName, isShoalError } from "@shoal/protocol";
import { EgressGuard } from "@shoal/tools";
import { createBackoff } from "@shoal/transport";

export interface NotifyTarget {
  url: string;
  on?: WorkflowEventName[];
}

/** A webhook's body before the Notifier gives it its event id. */
export type WorkflowNotice = WebhookNotice;

export interface NotifierOptions {
  /** What webhooks may connect to: the node's egress rules (the default rules without one). */
  egress?: EgressGuard | undefined;
  /** Key of the `Shoal-Signature` header (`--webhook-secret-file`); posts are unsigned without one. */
  secret?: string | undefined;
  /** Tries per event; 4 by default. */
  tries?: number | undefined;
}

let sharedEgress: EgressGuard | undefined;
/** The default rules, shared by every Notifier not given a guard: one connection pool, not one per workflow. */
function defaultEgress(): EgressGuard {
  sharedEgress ??= new EgressGuard();
  return sharedEgress;
}

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the time is signed with the body, so
 * a receiver that refuses old times refuses replays (Stripe's scheme).
 */
function signature(secret: string, body: string): string {
  // Wall time by design: the receiver holds it against its own clock to refuse replays.
  const t = Math.floor(Date.now() / 1000);
  return `t=${t},v1=${createHmac("sha256", secret).update(`${t}.${body}`).digest("hex")}`;
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
 * never the workflow. Its answer's body is never read, and a redirect is an answer, not followed.
 * Each event gets an id (`event_id` in the body, `Idempotency-Key` header), the same on each of
 * its tries; with a secret, each try is signed (`Shoal-Signature`) over the exact body it sends.
 * The webhook is held to the egress rules: a refused address is logged (SHOAL_ERR_EGRESS_DENIED)
 * and not tried again.
 */
export class Notifier {
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private dropped = 0;
  private readonly log: Logger;
  private readonly tries: number;
  private readonly egress: EgressGuard;

  constructor(
    private readonly target: NotifyTarget | undefined,
    logger: Logger,
    private readonly options: NotifierOptions = {},
  ) {
    this.log = logger.child({ component: "notify" });
    this.tries = options.tries ?? 4;
    this.egress = options.egress ?? defaultEgress();
  }

  notify(event: WorkflowNotice): void {
    const notice = { ...event, event_id: `evt_${randomBytes(12).toString("hex")}` };
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

  private async post(url: string, notice: WebhookPayload): Promise<void> {
    const backoff = createBackoff({ initialMs: 100, maxMs: 2_000 });
    const body = JSON.stringify(notice);
    const secret = this.options.secret;
    for (let attempt = 1; attempt <= this.tries; attempt++) {
      try {
        const headers = { "content-type": "application/json", "idempotency-key": notice.event_id, ...(secret && { "shoal-signature": signature(secret, body) }) };
        const res = await this.egress.fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(5_000), redirect: "manual" }, `webhook POST ${url}`);
        // Only the status matters: whatever the webhook sends back is not read into memory.
        await res.body?.cancel().catch(() => {});
        if (res.ok) return;
        this.log.warn({ url, status: res.status, attempt, event: notice.event }, "webhook answered with an error");
      } catch (err) {
        if (isShoalError(err, "SHOAL_ERR_EGRESS_DENIED")) {
          this.log.error({ url, event: notice.event, code: err.code, err: err.message }, "webhook refused by the node's egress rules; not posted");
          return;
        }
        this.log.warn({ url, err: (err as Error).message, attempt, event: notice.event }, "webhook unreachable");
      }
      if (attempt < this.tries) await new Promise((r) => setTimeout(r, backoff.next()));
    }
    this.log.error({ url, event: notice.event, tries: this.tries }, "webhook gave up");
  }
}
