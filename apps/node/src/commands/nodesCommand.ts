import { NodesResponseSchema } from "@shoal/protocol";
import { type ApiTarget, fetchApi } from "./fetchApi.js";
import { formatTable } from "./formatTable.js";

export async function runNodesCommand(target: ApiTarget, flags: { json?: boolean }): Promise<void> {
  const answer = NodesResponseSchema.parse(await fetchApi(target, "/v1/nodes"));
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
    return;
  }
  const rows = answer.nodes.map((n) => [
    n.self ? `${n.name} *` : n.name,
    n.status,
    n.address,
    n.capabilities.join(",") || "-",
    `${n.running}/${n.slots}`,
    n.last_seen_ms === null ? "-" : `${n.last_seen_ms} ms`,
    n.id.slice(0, 8),
  ]);
  process.stdout.write(`mesh as seen by ${answer.node} (* = that node)\n`);
  process.stdout.write(formatTable(["NAME", "STATUS", "ADDRESS", "CAPABILITIES", "LOAD", "LAST SEEN", "ID"], rows));
}
