import { WorkflowStateSchema } from "@shoal/protocol";
import { type ApiTarget, fetchApi } from "./fetchApi.js";

/** `shoal status WORKFLOW_ID`: the seed's state format, from any node. */
export async function runStatusCommand(id: string, target: ApiTarget): Promise<void> {
  const state = WorkflowStateSchema.parse(await fetchApi(target, `/v1/workflows/${encodeURIComponent(id)}`));
  process.stdout.write(`${JSON.stringify(state, null, 2)}\n`);
}
