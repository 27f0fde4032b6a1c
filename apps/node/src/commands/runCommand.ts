import { readFileSync } from "node:fs";
import { ShoalError, WorkflowAcceptedSchema, type WorkflowResult, WorkflowResultSchema, type WorkflowState, WorkflowStateSchema } from "@shoal/protocol";
import { parse as parseYaml } from "yaml";
import { type ApiTarget, fetchApi } from "./fetchApi.js";
import { progressBar, stepChanges } from "./progress.js";

export interface RunFlags {
  json?: boolean;
  /** Poll interval of the live progress. */
  intervalMs?: number;
}

/**
 * `shoal run FILE`: submits the workflow, shows live progress (a bar of steps done out of total,
 * and each step's state and node as it changes), then prints the seed-format result. Exits 0 when
 * the workflow completed or ended partial, 1 when it failed.
 */
export async function runWorkflowCommand(file: string, target: ApiTarget, flags: RunFlags): Promise<void> {
  const spec = readWorkflowFile(file);
  const { workflow_id } = WorkflowAcceptedSchema.parse(await fetchApi(target, "/v1/workflows", { method: "POST", body: spec }));
  const out = (line: string) => !flags.json && process.stdout.write(`${line}\n`);
  out(`workflow ${workflow_id} submitted to ${target.node}`);
  const seen = new Map<string, string>();
  let lastBar = "";
  let state: WorkflowState;
  for (;;) {
    state = WorkflowStateSchema.parse(await fetchApi(target, `/v1/workflows/${workflow_id}`));
    const bar = progressBar(state.progress.done, state.progress.total);
    const changes = stepChanges(state, seen);
    if (changes.length > 0 || bar !== lastBar) {
      out(`${bar}  ${state.status}`);
      for (const line of changes) out(line);
      lastBar = bar;
    }
    if (state.status !== "running") break;
    await new Promise((r) => setTimeout(r, flags.intervalMs ?? 200));
  }
  const result: WorkflowResult = WorkflowResultSchema.parse(await fetchApi(target, `/v1/workflows/${workflow_id}/result`));
  out("");
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  if (result.status === "failed") process.exitCode = 1;
}

export function readWorkflowFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ShoalError("SHOAL_ERR_BAD_SPEC", `cannot read workflow file ${file}: ${(err as Error).message}`);
  }
  try {
    return parseYaml(text);
  } catch (err) {
    throw new ShoalError("SHOAL_ERR_BAD_SPEC", `${file} is not valid YAML or JSON: ${(err as Error).message.split("\n")[0]}`);
  }
}
