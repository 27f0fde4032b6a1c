import type { WorkflowState } from "@shoal/protocol";

/** `[#########-----------] 3/7` */
export function progressBar(done: number, total: number, width = 24): string {
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}`;
}

/** One line per step whose status or node changed since `seen`; updates `seen`. */
export function stepChanges(state: WorkflowState, seen: Map<string, string>): string[] {
  const lines: string[] = [];
  for (const [id, step] of Object.entries(state.steps)) {
    const key = `${step.status}|${step.node ?? ""}|${step.attempts}`;
    if (seen.get(id) === key) continue;
    seen.set(id, key);
    const where = step.node ? ` on ${step.node}` : "";
    const tries = step.attempts > 1 ? ` (attempt ${step.attempts})` : "";
    const why = step.status === "pending" && step.placement ? ` (${step.placement})` : step.error ? `: ${step.error.code} ${step.error.message}` : "";
    lines.push(`  ${id.padEnd(20)} ${step.status.padEnd(8)}${where}${tries}${why}`);
  }
  return lines;
}
