import { WorkflowStateSchema } from "@shoal/protocol";
import { readSecretFile } from "../config.js";
import { fetchApi } from "./fetchApi.js";

/** `shoal status WORKFLOW_ID`: the seed's state format, from any node. */
export async function runStatusCommand(id: string, flags: { node: string; secretFile?: string }): Promise<void> {
  const secret = flags.secretFile ? readSecretFile(flags.secretFile) : undefined;
  const state = WorkflowStateSchema.parse(await fetchApi(flags.node, `/v1/workflows/${encodeURIComponent(id)}`, { secret }));
  process.stdout.write(`${JSON.stringify(state, null, 2)}\n`);
}
