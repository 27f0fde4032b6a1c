import { type Clock, LIMITS, MAX_INCARNATION, type Member, type NodeStatus, monotonicNow } from "@shoal/protocol";

export type MemberChangeKind = "joined" | "up" | "suspect" | "down" | "updated" | "removed";

export interface MemberChange {
  kind: MemberChangeKind;
  member: Member;
  previous: Member | undefined;
}

/**
 * What a merged record did when it is not a change of a peer's row:
 * - `refuted`: it said this node is suspect or down, and this node raised its incarnation;
 * - `exhausted`: the same, but the incarnation is at MAX_INCARNATION and cannot be raised;
 * - `forged`: a peer's record of this node at an incarnation this node never had;
 * - `unverified`: a third party's record of a member at an incarnation this table has not
 *   heard from that member itself;
 * - `full`: a new member, and the table holds `maxMembers` rows, none of them down.
 */
export type MergeVerdict = "refuted" | "exhausted" | "forged" | "unverified" | "full";

export interface MembershipTableOptions {
  /** Rows at most, this node's own included. */
  maxMembers?: number;
  /** The clock that dates deaths, for eviction and retention; `monotonicNow` by default. */
  now?: Clock;
}

/** Counts of records the table would not take, for the node's metrics. */
export interface MembershipStats {
  /** Records of new members refused because the table was full. */
  refused: number;
  /** Down members dropped to make room for a new one. */
  evicted: number;
  /** Records of this node at an incarnation above its own, ignored. */
  forged: number;
  /** Third parties' records that would have raised another member's incarnation, ignored. */
  unverified: number;
}

/** At one incarnation, worse news wins: a suspicion beats "up", a death beats a suspicion. */
const severity: Record<NodeStatus, number> = { up: 0, suspect: 1, down: 2 };

/**
 * The membership table with SWIM's merge rules, and no I/O. Only a node raises its own
 * incarnation: a record about a member is taken at a higher incarnation only from that member
 * itself (first-hand); a third party can only report it suspect or down at the incarnation this
 * table knows, or introduce a member this table does not know (at incarnation 0, until it is
 * heard from first-hand). At equal incarnation the more severe status wins. Load and tools of a
 * known member are taken first-hand only. Every merge costs O(1): names, addresses and deaths
 * are indexed.
 */
export class MembershipTable {
  readonly stats: MembershipStats = { refused: 0, evicted: 0, forged: 0, unverified: 0 };
  private readonly members = new Map<string, Member>();
  private readonly changedAt = new Map<string, number>();
  private readonly byName = new Map<string, Set<string>>();
  private readonly byAddress = new Map<string, Set<string>>();
  /** Down members and when they went down, the longest-down first. */
  private readonly downSince = new Map<string, number>();
  private readonly maxMembers: number;
  private readonly now: Clock;
  private round = 0;
  private refutedInRound = -1;

  constructor(
    private selfRecord: Member,
    options: MembershipTableOptions = {},
  ) {
    this.maxMembers = options.maxMembers ?? LIMITS["max-members"].default;
    this.now = options.now ?? monotonicNow;
  }

  get self(): Member {
    return this.selfRecord;
  }

  get size(): number {
    return this.members.size + 1;
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

  /** The peers that advertise `address`. */
  at(address: string): Member[] {
    return [...(this.byAddress.get(address) ?? [])].map((id) => this.members.get(id) as Member);
  }

  /** Counts gossip rounds, so `changedSince` can tell what is news. */
  nextRound(): number {
    return ++this.round;
  }

  /** Records changed in the last `rounds` rounds, this node's own record always among them. */
  changedSince(rounds: number): Member[] {
    const from = this.round - rounds;
    const changed = [this.selfRecord];
    for (const [id, at] of this.changedAt) if (at >= from) changed.push(this.members.get(id) as Member);
    return changed;
  }

  /** Changes this node's own record (load, tools): not a question of incarnation. */
  updateSelf(patch: Partial<Pick<Member, "running" | "tools" | "capabilities" | "slots">>): void {
    this.selfRecord = { ...this.selfRecord, ...patch };
  }

  /**
   * Announces this node's departure: down at a new incarnation (at the same one if it is at the
   * bound: at equal incarnation a death beats "up" anyway), so every peer accepts it.
   */
  leave(): Member {
    this.selfRecord = { ...this.selfRecord, status: "down", incarnation: Math.min(this.selfRecord.incarnation + 1, MAX_INCARNATION) };
    return this.selfRecord;
  }

  /** Merges one gossiped record. `fromId` is the node that sent it. */
  merge(record: Member, fromId: string): MemberChange | MergeVerdict | undefined {
    if (record.id === this.selfRecord.id) return this.mergeAboutSelf(record);
    const firstHand = fromId === record.id;
    const current = this.members.get(record.id);
    if (!current) return this.admit(record, firstHand);
    if (!firstHand) {
      if (record.incarnation > current.incarnation) {
        this.stats.unverified++;
        return "unverified";
      }
      if (record.incarnation < current.incarnation || severity[record.status] <= severity[current.status]) return undefined;
      // A third party's suspicion or death notice: the status only, never its view of the rest.
      return this.change({ ...current, status: record.status }, current);
    }
    const newer = record.incarnation > current.incarnation;
    const same = record.incarnation === current.incarnation;
    if (newer || (same && severity[record.status] > severity[current.status])) return this.change(record, current);
    if (same && record.status === current.status && !sameFields(record, current)) return this.change(record, current);
    return undefined;
  }

  /** This node's own verdict on a peer it has stopped hearing from. */
  mark(id: string, status: "suspect" | "down"): MemberChange | undefined {
    const current = this.members.get(id);
    if (!current || severity[current.status] >= severity[status]) return undefined;
    return this.change({ ...current, status }, current);
  }

  remove(id: string): MemberChange | undefined {
    const current = this.members.get(id);
    if (!current) return undefined;
    this.delete(current);
    return { kind: "removed", member: current, previous: current };
  }

  /** Forgets the members down since before `cutoff` (a time of the table's clock). */
  forgetDownBefore(cutoff: number): MemberChange[] {
    const removed: MemberChange[] = [];
    for (const [id, since] of this.downSince) {
      if (since >= cutoff) break;
      const change = this.remove(id);
      if (change) removed.push(change);
    }
    return removed;
  }

  private mergeAboutSelf(record: Member): MergeVerdict | undefined {
    const self = this.selfRecord;
    if (self.status === "down") return undefined; // leaving: nothing to refute
    if (record.incarnation > self.incarnation) {
      // Only this node raises its incarnation, and it keeps it across restarts: a lie.
      this.stats.forged++;
      return "forged";
    }
    if (record.status === "up" || record.incarnation < self.incarnation) return undefined;
    // One raise a round: the report comes again with the next rounds of gossip if it still
    // stands, and a peer that repeats it in a loop cannot run the incarnation up to the bound.
    if (this.refutedInRound === this.round) return undefined;
    if (self.incarnation >= MAX_INCARNATION) return "exhausted";
    this.refutedInRound = this.round;
    this.selfRecord = { ...self, incarnation: self.incarnation + 1 };
    return "refuted";
  }

  /**
   * A member this table does not know. From itself, as it says; from a third party only when
   * it is said to be up (a death notice of a stranger tells nothing to act on, and taking it
   * would bring forgotten members back), and at incarnation 0: its own record, when it comes,
   * is newer. Past the cap, the longest-down member makes room, or the record is refused.
   */
  private admit(record: Member, firstHand: boolean): MemberChange | MergeVerdict | undefined {
    if (!firstHand && record.status !== "up") return undefined;
    const member = firstHand ? record : { ...record, incarnation: 0 };
    this.dropDownNamesakes(member);
    if (this.size >= this.maxMembers && !this.evictLongestDown()) {
      this.stats.refused++;
      return "full";
    }
    this.set(member, undefined);
    return { kind: member.status === "up" ? "joined" : member.status, member, previous: undefined };
  }

  /** A node that comes back with a new id under an old name replaces its dead record. */
  private dropDownNamesakes(record: Member): void {
    const ids = this.byName.get(record.name);
    if (!ids) return;
    for (const id of [...ids]) {
      const m = this.members.get(id) as Member;
      if (id !== record.id && m.status === "down") this.delete(m);
    }
  }

  private evictLongestDown(): boolean {
    const longest = this.downSince.keys().next();
    if (longest.done) return false;
    this.delete(this.members.get(longest.value) as Member);
    this.stats.evicted++;
    return true;
  }

  private change(next: Member, current: Member): MemberChange {
    this.set(next, current);
    return { kind: next.status === current.status ? "updated" : next.status, member: next, previous: current };
  }

  private set(next: Member, previous: Member | undefined): void {
    const id = next.id;
    this.members.set(id, next);
    this.changedAt.set(id, this.round);
    if (previous?.name !== next.name) {
      if (previous) unindex(this.byName, previous.name, id);
      index(this.byName, next.name, id);
    }
    if (previous?.address !== next.address) {
      if (previous) unindex(this.byAddress, previous.address, id);
      index(this.byAddress, next.address, id);
    }
    if (next.status !== "down") this.downSince.delete(id);
    else if (previous?.status !== "down") this.downSince.set(id, this.now());
  }

  private delete(member: Member): void {
    this.members.delete(member.id);
    this.changedAt.delete(member.id);
    this.downSince.delete(member.id);
    unindex(this.byName, member.name, member.id);
    unindex(this.byAddress, member.address, member.id);
  }
}

function index(map: Map<string, Set<string>>, key: string, id: string): void {
  const ids = map.get(key);
  if (ids) ids.add(id);
  else map.set(key, new Set([id]));
}

function unindex(map: Map<string, Set<string>>, key: string, id: string): void {
  const ids = map.get(key);
  ids?.delete(id);
  if (ids?.size === 0) map.delete(key);
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
