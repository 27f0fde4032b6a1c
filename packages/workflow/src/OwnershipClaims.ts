import type { Mesh } from "@shoal/mesh";
import type { Logger, WorkflowClaim } from "@shoal/protocol";
import type { Transport } from "@shoal/transport";
import type { WorkflowStore } from "./WorkflowStore.js";
import { supersedes } from "./ownership.js";

export interface OwnershipClaimsOptions {
  transport: Transport;
  mesh: Mesh;
  store: WorkflowStore;
  logger: Logger;
}

/**
 * What a node says, and asks, about who owns a workflow: a claim is (workflow, owner, epoch),
 * and the highest epoch wins. Read from the store, so that it holds for ended workflows too.
 */
export class OwnershipClaims {
  constructor(private readonly options: OwnershipClaimsOptions) {}

  /** This node's claim on a workflow at `epoch`. */
  mine(workflowId: string, epoch: number): WorkflowClaim {
    const { id, name } = this.options.transport.identity;
    return { workflow_id: workflowId, owner: id, owner_name: name, epoch };
  }

  /** Workflows this node took over, running or ended (as long as it keeps them). */
  takenOver(): WorkflowClaim[] {
    return this.options.store.takenOverBy(this.options.transport.identity.id).map(({ id, epoch }) => this.mine(id, epoch));
  }

  /** Those of `ids` this node owns, running or ended. */
  among(ids: string[]): WorkflowClaim[] {
    return ids.flatMap((id) => {
      const known = this.options.store.ownership(id);
      return known?.owner === this.options.transport.identity.id ? [this.mine(id, known.epoch)] : [];
    });
  }

  /** Tells one peer (`workflow.claimed`); a peer that cannot be reached hears it on the next link. */
  tell(peerId: string, claim: WorkflowClaim): void {
    try {
      this.options.transport.cast(peerId, "workflow.claimed", claim);
    } catch (err) {
      this.options.logger.debug({ err, peer: peerId, workflowId: claim.workflow_id }, "could not tell a peer who owns a workflow");
    }
  }

  /** Tells every peer that is up. */
  announce(claim: WorkflowClaim): void {
    for (const m of this.options.mesh.members()) if (!m.self && m.status === "up") this.tell(m.id, claim);
  }

  /** Which of these workflows live peers own now (`workflow.claims`), asked of every one of them. */
  async ask(ids: string[]): Promise<Map<string, WorkflowClaim>> {
    const claims = new Map<string, WorkflowClaim>();
    if (ids.length === 0) return claims;
    const peers = this.options.mesh.members().filter((m) => !m.self && m.status === "up");
    const answers = await Promise.allSettled(peers.map((p) => this.options.transport.request(p.id, "workflow.claims", { workflow_ids: ids }, { timeoutMs: 5_000 })));
    for (const a of answers) {
      if (a.status !== "fulfilled") continue;
      for (const claim of a.value) {
        const known = claims.get(claim.workflow_id);
        if (!known || supersedes(claim, known)) claims.set(claim.workflow_id, claim);
      }
    }
    return claims;
  }
}
