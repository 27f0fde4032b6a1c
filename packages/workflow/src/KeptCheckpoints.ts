import { type Clock, type InstanceRecord, monotonicNow } from "@shoal/protocol";
import { agedCheckpoint } from "@shoal/runtime";

/**
 * When the agent checkpoints in the copies kept here arrived, on this node's monotonic clock. A
 * checkpoint's timers say how long each had left when the owner sent it; a takeover runs them with
 * that less the time the copy waited here, as the runtime does with a checkpoint its supervisor
 * kept a while. (The copies themselves do not outlive a restart of this node: see Fencing.)
 */
export class KeptCheckpoints {
  private readonly at = new Map<string, Map<string, number>>();

  constructor(private readonly clock: Clock = monotonicNow) {}

  /** Records of a copy were stored here: those with a checkpoint have a fresh one, the others none. */
  heard(id: string, records: InstanceRecord[]): void {
    let byInstance = this.at.get(id);
    for (const r of records) {
      if (!r.checkpoint) {
        byInstance?.delete(r.id);
        continue;
      }
      if (!byInstance) {
        byInstance = new Map();
        this.at.set(id, byInstance);
      }
      byInstance.set(r.id, this.clock());
    }
  }

  /** The copy is gone. */
  forget(id: string): void {
    this.at.delete(id);
  }

  /** The records as a run taking the copy over now starts from them, timers aged; the copy is forgotten here. */
  takeOver(id: string, records: Record<string, InstanceRecord>): Record<string, InstanceRecord> {
    const byInstance = this.at.get(id);
    this.at.delete(id);
    if (!byInstance) return records;
    const now = this.clock();
    const aged = { ...records };
    for (const [instance, at] of byInstance) {
      const r = aged[instance];
      if (r?.checkpoint) aged[instance] = { ...r, checkpoint: agedCheckpoint(r.checkpoint, now - at) };
    }
    return aged;
  }
}
