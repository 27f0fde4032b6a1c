import type { Mesh } from "@shoal/mesh";

export interface PeersSettledOptions {
  /** Addresses of peers this node expects back (the ones it knew before a restart). */
  expect: string[];
  /** No member changed status for this long. */
  quietMs: number;
  /** Resolves after this long whatever the mesh looks like (an expected peer may be gone for good). */
  maxMs: number;
}

/**
 * Resolves once every expected peer is up and no member has changed status for `quietMs`, or
 * after `maxMs`. A restarted node waits for this before it resumes its workflows: their steps
 * can only be placed on nodes it sees.
 */
export function peersSettled(mesh: Mesh, options: PeersSettledOptions): Promise<void> {
  const expected = new Set(options.expect);
  const allBack = () => [...expected].every((address) => mesh.members().some((m) => m.address === address && m.status === "up"));
  return new Promise((resolve) => {
    let quiet: NodeJS.Timeout | undefined;
    const events = ["up", "suspect", "down"] as const;
    const done = () => {
      clearTimeout(quiet);
      clearTimeout(cap);
      for (const e of events) mesh.off(e, changed);
      resolve();
    };
    const changed = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => (allBack() ? done() : undefined), options.quietMs);
    };
    const cap = setTimeout(done, options.maxMs);
    for (const e of events) mesh.on(e, changed);
    changed();
  });
}
