import type { Member, NodeStatus } from "@shoal/protocol";

export type MemberChangeKind = "joined" | "up" | "suspect" | "down" | "updated" | "removed";

export interface MemberChange {
  kind: MemberChangeKind;
  member: Member;
  previous: Member | undefined;
}

/** At one incarnation, worse news wins: a suspicion beats "up", a death beats a suspicion. */
const severity: Record<NodeStatus, number> = { up: 0, suspect: 1, down: 2 };

/**
 * The membership table with SWIM's merge rules, and no I/O. A record with a higher incarnation
 * always wins; at equal incarnation the more severe status wins; only the node itself raises
 * its incarnation, which is how it refutes a suspicion or comes back after a restart. Load and
 * tools are taken first-hand only (from gossip the member sent about itself).
 */
export class MembershipTable {
  private readonly members = new Map<string, Member>();
  private readonly changedAt = new Map<string, number>();
  private round = 0;

  constructor(private selfRecord: Member) {}

  get self(): Member {
    return this.selfRecord;
  }

  get(id: string): Member | undefined {
    return id === this.selfRecord.id ? this.selfRecord : this.members.get(id);
  }

  /** Every member, this node first. */
  all(): Member[] {
    return [this.selfRecord, ...this.members.values()];
  }

  peers(): Member[] {
    return [...this.members.values()];
  }

  /** Counts gossip rounds, so `changedSince` can tell what is news. */
  nextRound(): number {
    return ++this.round;
  }

  /** Records changed in the last `rounds` rounds, this node's own record always among them. */
  changedSince(rounds: number): Member[] {
    const from = this.round - rounds;
    return this.all().filter((m) => m.id === this.selfRecord.id || (this.changedAt.get(m.id) ?? -1) >= from);
  }

  /** Changes this node's own record (load, tools): not a question of incarnation. */
  updateSelf(patch: Partial<Pick<Member, "running" | "tools" | "capabilities" | "slots">>): void {
    this.selfRecord = { ...this.selfRecord, ...patch };
  }

  /** Announces this node's departure: down at a new incarnation, so every peer accepts it. */
  leave(): Member {
    this.selfRecord = { ...this.selfRecord, status: "down", incarnation: this.selfRecord.incarnation + 1 };
    return this.selfRecord;
  }

  /**
   * Merges one gossiped record. `fromId` is the node that sent it; returns what changed, or
   * "refuted" when the record wrongly said this node is suspect or down.
   */
  merge(record: Member, fromId: string): MemberChange | "refuted" | undefined {
    if (record.id === this.selfRecord.id) return this.mergeAboutSelf(record);
    const current = this.members.get(record.id);
    if (!current) {
      this.dropDownNamesake(record);
      this.set(record);
      return { kind: record.status === "up" ? "joined" : record.status, member: record, previous: undefined };
    }
    const newer = record.incarnation > current.incarnation;
    const worse = record.incarnation === current.incarnation && severity[record.status] > severity[current.status];
    if (newer || worse) {
      // Self-described fields come from the node, or from a record of a newer life of it.
      const next: Member = newer || fromId === record.id ? record : { ...current, status: record.status };
      this.set(next);
      return { kind: next.status === current.status ? "updated" : next.status, member: next, previous: current };
    }
    if (record.incarnation === current.incarnation && record.status === current.status && fromId === record.id && !sameFields(record, current)) {
      this.set(record);
      return { kind: "updated", member: record, previous: current };
    }
    return undefined;
  }

  /** This node's own verdict on a peer it has stopped hearing from. */
  mark(id: string, status: "suspect" | "down"): MemberChange | undefined {
    const current = this.members.get(id);
    if (!current || severity[current.status] >= severity[status]) return undefined;
    const next = { ...current, status };
    this.set(next);
    return { kind: status, member: next, previous: current };
  }

  remove(id: string): MemberChange | undefined {
    const current = this.members.get(id);
    if (!current) return undefined;
    this.members.delete(id);
    this.changedAt.delete(id);
    return { kind: "removed", member: current, previous: current };
  }

  private mergeAboutSelf(record: Member): "refuted" | undefined {
    const self = this.selfRecord;
    if (self.status === "down") return undefined; // leaving: nothing to refute
    // A suspicion or death notice of us, or a record of an earlier life of ours with a higher
    // incarnation (we restarted and forgot it): outbid it.
    if ((record.status !== "up" && record.incarnation >= self.incarnation) || record.incarnation > self.incarnation) {
      this.selfRecord = { ...self, incarnation: record.incarnation + 1 };
      return "refuted";
    }
    return undefined;
  }

  /** A node that comes back with a new id under an old name replaces its dead record. */
  private dropDownNamesake(record: Member): void {
    for (const m of this.members.values()) {
      if (m.name === record.name && m.id !== record.id && m.status === "down") this.members.delete(m.id);
    }
  }

  private set(member: Member): void {
    this.members.set(member.id, member);
    this.changedAt.set(member.id, this.round);
  }
}

function sameFields(a: Member, b: Member): boolean {
  return (
    a.running === b.running &&
    a.slots === b.slots &&
    a.address === b.address &&
    a.name === b.name &&
    a.tools.join() === b.tools.join() &&
    a.capabilities.join() === b.capabilities.join()
  );
}
