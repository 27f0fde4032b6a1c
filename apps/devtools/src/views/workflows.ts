import { fmtTime, html, setHtml } from "../dom.js";
import type { Store } from "../store.js";

const ROW = 30;

/**
 * The workflows of the mesh, newest first, filterable by name, id, status or owner. Only the
 * rows in view are in the DOM, so a thousand workflows scroll as smoothly as ten.
 */
export function renderWorkflows(root: HTMLElement, store: Store, ui: { filter: string; scrollTop: number }): void {
  // ISO timestamps order as strings; a plain comparison is much cheaper than localeCompare.
  const all = [...store.workflows.values()].sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0));
  const f = ui.filter.toLowerCase();
  const rows = f ? all.filter((w) => `${w.id} ${w.name} ${w.status} ${w.owner}`.toLowerCase().includes(f)) : all;
  if (!root.querySelector("#wf-filter")) {
    setHtml(
      root,
      html`
      <h2>Workflows <small id="wf-count"></small></h2>
      <input id="wf-filter" placeholder="filter by name, id, status, owner" />
      <div class="wf-head"><span>workflow</span><span>name</span><span>status</span><span>progress</span><span>owner</span><span>started</span></div>
      <div id="wf-scroll" class="wf-scroll"><div id="wf-space"></div></div>`,
    );
    const input = root.querySelector("#wf-filter") as HTMLInputElement;
    input.value = ui.filter;
    input.oninput = () => {
      ui.filter = input.value;
      renderWorkflows(root, store, ui);
    };
    const scroll = root.querySelector("#wf-scroll") as HTMLElement;
    scroll.onscroll = () => {
      ui.scrollTop = scroll.scrollTop;
      renderWorkflows(root, store, ui);
    };
  }
  (root.querySelector("#wf-count") as HTMLElement).textContent = `${rows.length} of ${all.length}`;
  const scroll = root.querySelector("#wf-scroll") as HTMLElement;
  const space = root.querySelector("#wf-space") as HTMLElement;
  space.style.height = `${rows.length * ROW}px`;
  const first = Math.max(0, Math.floor(ui.scrollTop / ROW) - 5);
  const count = Math.ceil((scroll.clientHeight || 600) / ROW) + 10;
  setHtml(
    space,
    html`${rows.slice(first, first + count).map(
      (w) => html`<a class="wf-row ${w.status}" data-workflow="${w.id}" href="#/workflows/${encodeURIComponent(w.id)}">
        <span>${w.id}</span><span>${w.name}</span><span class="badge ${w.status}">${w.status}</span>
        <span>${w.progress.done}/${w.progress.total}</span><span>${w.owner}</span><span>${fmtTime(w.startedAt)}</span></a>`,
    )}`,
  );
  // Positions go through the CSSOM: the page's CSP allows no style attributes in markup.
  [...space.children].forEach((row, i) => {
    (row as HTMLElement).style.top = `${(first + i) * ROW}px`;
  });
}
