import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MemberChange, Mesh } from "@shoal/mesh";
import type { Logger } from "@shoal/protocol";
import { z } from "zod";

const FILE = "peers.json";
const KnownPeersSchema = z.object({ peers: z.array(z.object({ name: z.string(), address: z.string() })) });

/**
 * The peers this node saw up last, from its data dir. A restarted node dials them itself, so it
 * is back in the mesh at once instead of when a seed or a peer's redial finds it (up to the
 * redial backoff, 5 s), and it knows whom to wait for before it resumes its workflows.
 */
export function loadKnownPeers(dataDir: string, log: Logger): { name: string; address: string }[] {
  let text: string;
  try {
    text = readFileSync(join(dataDir, FILE), "utf8");
  } catch {
    return []; // a first start
  }
  try {
    return KnownPeersSchema.parse(JSON.parse(text)).peers;
  } catch (err) {
    log.warn({ err: (err as Error).message, file: join(dataDir, FILE) }, "ignoring an unreadable list of known peers");
    return [];
  }
}

/** Keeps `peers.json` in the data dir up to date with the peers that are up; returns a stop function. */
export function rememberPeers(mesh: Mesh, dataDir: string, log: Logger): () => void {
  let written = "";
  const write = () => {
    const peers = mesh
      .members()
      .filter((m) => !m.self && m.status === "up")
      .map((m) => ({ name: m.name, address: m.address }))
      .sort((a, b) => a.address.localeCompare(b.address));
    const text = `${JSON.stringify({ peers }, null, 2)}\n`;
    if (text === written) return;
    try {
      // Whole or not at all: a crash mid-write must not leave half a file.
      writeFileSync(join(dataDir, `${FILE}.tmp`), text);
      renameSync(join(dataDir, `${FILE}.tmp`), join(dataDir, FILE));
      written = text;
    } catch (err) {
      log.warn({ err: (err as Error).message }, "could not write the list of known peers");
    }
  };
  // Once a batch: a gossip frame that brings a thousand members writes the file once, not a thousand times.
  const onChanges = (changes: MemberChange[]) => {
    if (changes.some((c) => c.kind === "joined" || c.kind === "up" || c.kind === "down")) write();
  };
  mesh.on("changes", onChanges);
  return () => mesh.off("changes", onChanges);
}
