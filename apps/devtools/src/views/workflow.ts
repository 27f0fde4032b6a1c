import type { StepState, WorkflowState } from "@shoal/protocol";
import { BOX, layout } from "../dag.js";
import { type Html, fmtTime, html, json, setHtml } from "../dom.js";
import type { Store } from "../store.js";

export interface WorkflowUi {
  selected: string | null;
  /** Index into the recorded history; null follows the live state. */
  frame: number | null;
}

/**
 * One workflow: its DAG with each step coloured by state (node, attempts), a panel with the
 * selected step's timings, placement reason, input and output, and a timeline of every state
 * recorded while watching, to step back and forth.
 */
export function renderWorkflow(root: HTMLElement, store: Store, id: string, ui: WorkflowUi): void {
  const entry = store.workflows.get(id);
  if (!entry?.state) {
    setHtml(root, html`<h2>Workflow ${id}</h2><p>loading…</p>`);
    return;
  }
  const frames = entry.history;
  const frame = ui.frame === null ? frames.length - 1 : Math.min(ui.frame, frames.length - 1);
  const state: WorkflowState = frames[frame]?.state ?? entry.state;
  const { boxes, edges, width, height } = layout(state);
  const at = new Map(boxes.map((b) => [b.id, b]));
  const lines = edges.map(([from, to]) => {
    const a = at.get(from);
    const b = at.get(to);
    return a && b ? html`<path class="edge" d="M${a.x + BOX.w},${a.y + BOX.h / 2} C${a.x + BOX.w + 35},${a.y + BOX.h / 2} ${b.x - 35},${b.y + BOX.h / 2} ${b.x},${b.y + BOX.h / 2}"/>` : html``;
  });
  const nodes = boxes.map((b) => {
    const s = state.steps[b.id] as StepState;
    return html`<g class="step ${s.status}${ui.selected === b.id ? " selected" : ""}" data-step="${b.id}" data-status="${s.status}" data-node="${s.node ?? ""}" transform="translate(${b.x},${b.y})">
        <rect width="${BOX.w}" height="${BOX.h}" rx="6"/>
        <text x="8" y="18" class="name">${b.id}</text>
        <text x="8" y="36" class="meta">${s.tool} · ${s.status}${s.node ? ` @ ${s.node}` : ""}${s.attempts > 1 ? ` · try ${s.attempts}` : ""}</text>
      </g>`;
  });
  const sel = ui.selected ? state.steps[ui.selected] : undefined;
  const live = ui.frame === null;
  setHtml(
    root,
    html`
    <h2>${state.name} <small>${id} · <span class="badge ${state.status}" id="wf-status">${state.status}</span> · owner ${state.owner} · ${state.progress.done}/${state.progress.total}</small></h2>
    <div class="timeline">
      <button id="tl-prev">◀</button>
      <input id="tl-slider" type="range" min="0" max="${Math.max(frames.length - 1, 0)}" value="${frame}" />
      <button id="tl-next">▶</button>
      <button id="tl-live" ${live ? html`disabled` : ""}>live</button>
      <span id="tl-label">${live ? "live" : `recorded state ${frame + 1} of ${frames.length}`} · ${frames[frame] ? new Date(frames[frame].at).toLocaleTimeString() : ""}</span>
    </div>
    <div class="wf-view">
      <svg class="dag" width="${width}" height="${height}">${lines}${nodes}</svg>
      <aside class="panel" id="step-panel">${sel && ui.selected ? stepPanel(ui.selected, sel) : html`<p class='muted'>click a step</p>`}</aside>
    </div>`,
  );
  root.querySelectorAll<SVGGElement>("g.step").forEach((g) => {
    g.onclick = () => {
      ui.selected = g.dataset.step ?? null;
      renderWorkflow(root, store, id, ui);
    };
  });
  const go = (f: number | null) => {
    ui.frame = f;
    renderWorkflow(root, store, id, ui);
  };
  (root.querySelector("#tl-slider") as HTMLInputElement).oninput = (e) => go(Number((e.target as HTMLInputElement).value));
  (root.querySelector("#tl-prev") as HTMLButtonElement).onclick = () => go(Math.max(0, frame - 1));
  (root.querySelector("#tl-next") as HTMLButtonElement).onclick = () => go(frame + 1 >= frames.length ? null : frame + 1);
  (root.querySelector("#tl-live") as HTMLButtonElement).onclick = () => go(null);
}

function stepPanel(id: string, s: StepState): Html {
  return html`<h3>${id}</h3>
    <dl>
      <dt>status</dt><dd><span class="badge ${s.status}">${s.status}</span></dd>
      <dt>tool</dt><dd>${s.tool}</dd>
      <dt>node</dt><dd id="step-node">${s.node ?? "-"}</dd>
      <dt>attempts</dt><dd>${s.attempts}</dd>
      <dt>started</dt><dd>${fmtTime(s.started_at)}</dd>
      <dt>ended</dt><dd>${fmtTime(s.ended_at)}</dd>
      <dt>placement</dt><dd>${s.placement ?? "-"}</dd>
      <dt>actor</dt><dd>${s.actor ? html`<a href="#/actors/${encodeURIComponent(s.actor)}">${s.actor}</a>` : "-"}</dd>
    </dl>
    ${s.error ? html`<h4>error</h4><p class="error">${s.error.code}: ${s.error.message}</p>` : ""}
    <h4>input</h4>${json(s.input ?? null)}
    <h4>output</h4>${json(s.result ?? null)}`;
}
