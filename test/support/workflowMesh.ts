import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type WorkflowResult, WorkflowResultSchema } from "@shoal/protocol";
import { type NodeProcess, startMesh, tempDir, until } from "./shoalProcess.js";

/** The test plugin: sleep_tool, boom_tool, busy, counters; tools record what they did in SHOAL_TEST_DIR. */
export const PLUGIN = resolve(import.meta.dirname, "../fixtures/plugins/actors.mjs");
export const FAST = ["--heartbeat-ms", "100", "--suspect-after-ms", "300", "--down-after-ms", "600"];

export interface WorkflowNodeSpec {
  name: string;
  slots?: number;
  capabilities?: string;
  extra?: string[];
}

/**
 * Real `shoal node` processes with the test plugin and fast failure detection, all joined through
 * the first, sharing one record dir; each goes into `started` as soon as it runs, for cleanup.
 * Resolves once every node sees all of them up.
 */
export async function workflowMesh(specs: WorkflowNodeSpec[], started: NodeProcess[], env: Record<string, string> = {}): Promise<{ nodes: NodeProcess[]; dir: string }> {
  const dir = tempDir("wf-");
  const nodes: NodeProcess[] = [];
  for (const s of specs) {
    const m = await startMesh([s.name], {
      extra: ["--plugin", PLUGIN, "--slots", String(s.slots ?? 4), ...(s.capabilities ? ["--capabilities", s.capabilities] : []), ...(s.extra ?? []), ...FAST, ...(nodes[0] ? ["--join", nodes[0].address] : [])],
      env: { ...env, SHOAL_TEST_DIR: dir },
    });
    nodes.push(...m.nodes);
    started.push(...m.nodes);
  }
  for (const n of nodes) await until(async () => (await n.nodes()).filter((r) => r.status === "up").length === nodes.length, 10_000);
  return { nodes, dir };
}

/** One sleep_tool step of 10 ms, named `only`. */
export const quickSpec = (name: string) => ({ name, steps: [{ id: "only", tool: "sleep_tool", input: { ms: 10 } }] });

/** Two sleep_tool steps: `first` runs for `ms`, then `second` for 10 ms. */
export const chainSpec = (name: string, ms: number) => ({
  name,
  steps: [
    { id: "first", tool: "sleep_tool", input: { ms } },
    { id: "second", tool: "sleep_tool", needs: ["first"], input: { ms: 10 } },
  ],
});

/** Submits a workflow; fails unless it is accepted (202). */
export async function submit(node: NodeProcess, spec: object): Promise<string> {
  const r = await node.post("/v1/workflows", spec);
  if (r.status !== 202) throw new Error(`workflow refused with ${r.status}: ${JSON.stringify(r.json)}`);
  return r.json.workflow_id as string;
}

/** Waits until the workflow has ended, then reads its result (the seed's response format). */
export async function resultOf(node: NodeProcess, id: string, timeoutMs = 20_000): Promise<WorkflowResult> {
  const ended = new Set(["complete", "partial", "failed"]);
  await until(async () => ended.has((await node.get(`/v1/workflows/${id}`)).json?.status), timeoutMs, () => `workflow ${id} never ended`);
  return WorkflowResultSchema.parse((await node.get(`/v1/workflows/${id}/result`)).json);
}

/** What sleep_tool recorded: a line when each run starts, another when it ends. */
export function stepsLog(dir: string): any[] {
  return readFileSync(join(dir, "steps.log"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

/**
 * Reads an id no node ever accepted until `node` answers 404: a node still joining the mesh
 * (just started) may first answer 503 SHOAL_ERR_RESUMING, as it cannot yet tell. Fails on any
 * other answer.
 */
export async function expectNeverAccepted(node: NodeProcess, id: string): Promise<void> {
  const seen = new Set<string>();
  await until(
    async () => {
      const r = await node.get(`/v1/workflows/${id}`);
      seen.add(`${r.status} ${r.json?.error?.code}`);
      return r.status === 404;
    },
    10_000,
    () => `${node.name} never answered 404 for ${id}: ${[...seen].join(", ")}`,
  );
  const other = [...seen].filter((s) => s !== "404 SHOAL_ERR_UNKNOWN_WORKFLOW" && s !== "503 SHOAL_ERR_RESUMING");
  if (other.length > 0) throw new Error(`${node.name} answered ${other.join(", ")} for ${id}, which no node accepted`);
}
