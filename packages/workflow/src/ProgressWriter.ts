import type { InstanceRecord, Logger } from "@shoal/protocol";
import type { WorkflowStore } from "./WorkflowStore.js";

const ENDED = new Set(["complete", "failed", "skipped"]);

/**
 * What a resume needs of an instance record: the outcome once it has ended, else only the attempt
 * it has reached (a record that has not ended is run again from scratch). Written when it changes,
 * which is about once per step: where a running step is placed is not worth a write.
 */
const fingerprint = (r: InstanceRecord) => (ENDED.has(r.status) ? `${r.status}|${r.attempts}` : `open|${Math.max(1, r.attempts)}`);

export interface ProgressWriterOptions {
  store: WorkflowStore;
  logger: Logger;
  /** Changes wait at most this long, to be written together in one transaction. */
  intervalMs: number;
  /** The current instance records of a running workflow; undefined once it is no longer here. */
  recordsOf(workflowId: string): Record<string, InstanceRecord> | undefined;
  /** Called with what was just written, per workflow (for its backup). */
  written(workflowId: string, records: InstanceRecord[]): void;
}

/**
 * Writes the instance records of running workflows to the store when what a resume needs of
 * them changes, batched: a commit per step cost about as much as the rest of the orchestration.
 * A crash loses at most `intervalMs` of outcomes; those steps run again on resume.
 */
export class ProgressWriter {
  /** What the store holds of each instance record, by workflow. */
  private readonly stored = new Map<string, Map<string, string>>();
  private readonly unsaved = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ProgressWriterOptions) {}

  /** A workflow starts (or runs on from `records`, which the store already has). */
  begin(workflowId: string, records: Record<string, InstanceRecord> = {}): void {
    this.stored.set(workflowId, new Map(Object.values(records).map((r) => [r.id, fingerprint(r)])));
  }

  /** An instance's outcome or attempt changed: write it soon. */
  changed(workflowId: string, instance: string): void {
    const instances = this.unsaved.get(workflowId) ?? new Set<string>();
    instances.add(instance);
    this.unsaved.set(workflowId, instances);
    this.timer ??= setTimeout(() => this.flush(), this.options.intervalMs);
  }

  /** The workflow ended or is no longer here: nothing more to write for it. */
  end(workflowId: string): void {
    this.stored.delete(workflowId);
    this.unsaved.delete(workflowId);
  }

  /** Writes what changed now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const changes: { workflowId: string; record: InstanceRecord }[] = [];
    for (const [workflowId, instances] of this.unsaved) {
      const records = this.options.recordsOf(workflowId);
      const stored = this.stored.get(workflowId);
      if (!records || !stored) continue;
      for (const instance of instances) {
        const record = records[instance];
        if (!record) continue;
        const print = fingerprint(record);
        if (stored.get(record.id) === print) continue;
        stored.set(record.id, print);
        changes.push({ workflowId, record });
      }
    }
    this.unsaved.clear();
    if (changes.length === 0) return;
    try {
      this.options.store.saveRecords(changes);
      this.options.logger.debug({ stored: changes.map((c) => `${c.workflowId}/${c.record.id}`) }, "stored workflow progress");
    } catch (err) {
      // The workflows go on; what they did since is lost if this node restarts.
      this.options.logger.error({ err, records: changes.length }, "could not store workflow progress");
    }
    const byWorkflow = new Map<string, InstanceRecord[]>();
    for (const { workflowId, record } of changes) byWorkflow.set(workflowId, [...(byWorkflow.get(workflowId) ?? []), record]);
    for (const [workflowId, records] of byWorkflow) this.options.written(workflowId, records);
  }
}
