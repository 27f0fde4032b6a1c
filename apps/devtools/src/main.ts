import "./zodJitless.js";
import type { LogicInfo } from "@shoal/protocol";
import { ActorDescriptionSchema, LogicInfoSchema, NodesResponseSchema, WorkflowListResponseSchema, WorkflowStateSchema } from "@shoal/protocol/web";
import { getJson, openInspect } from "./api.js";
import { initTokenControls } from "./auth.js";
import { html, setHtml } from "./dom.js";
import { Store } from "./store.js";
import { renderActor, renderActors } from "./views/actor.js";
import { renderMesh } from "./views/mesh.js";
import { renderWorkflow, type WorkflowUi } from "./views/workflow.js";
import { renderWorkflows } from "./views/workflows.js";
import "./style.css";

const store = new Store();
// For benchmarks and debugging from the console: how many events this page has taken in.
(window as unknown as { __shoal: Store }).__shoal = store;
const app = document.getElementById("app") as HTMLElement;
const conn = document.getElementById("conn") as HTMLElement;
const listUi = { filter: "", scrollTop: 0 };
const workflowUi = new Map<string, WorkflowUi>();
const logic = new Map<string, LogicInfo>();
let currentView = "";

async function boot(): Promise<void> {
  const nodes = await getJson("/v1/nodes", NodesResponseSchema);
  store.self = nodes.node;
  for (const n of nodes.nodes) store.nodes.set(n.name, n);
  const list = await getJson("/v1/workflows?scope=mesh", WorkflowListResponseSchema);
  for (const w of list.workflows) {
    if (!store.workflows.has(w.workflow_id)) {
      store.workflows.set(w.workflow_id, { id: w.workflow_id, name: w.name, status: w.status, owner: w.owner, startedAt: w.started_at, progress: w.progress, history: [] });
    }
  }
  openInspect(
    (events) => store.apply(events),
    (status) => {
      conn.textContent = status === "open" ? `live via ${store.self}` : status === "token" ? "token needed" : "reconnecting…";
      conn.className = `conn ${status}`;
    },
    (err) => {
      // Shown, not thrown: the page keeps what it has and goes on with the next batch.
      conn.textContent = err.message;
      conn.className = "conn closed";
    },
  );
  store.onChange(render);
  window.addEventListener("hashchange", () => {
    currentView = "";
    render();
  });
  render();
}

function render(): void {
  const [, view = "mesh", id] = location.hash.split("/");
  const key = `${view}/${id ?? ""}`;
  const fresh = key !== currentView;
  currentView = key;
  const dirty = store.dirty;
  store.dirty = new Set();
  // The mesh view is the costliest to draw and shows only membership: skip it for other events.
  if (!fresh && view === "mesh" && !dirty.has("member") && !dirty.has("load")) return;
  for (const a of document.querySelectorAll<HTMLAnchorElement>("nav a")) a.classList.toggle("active", a.dataset.view === view);
  if (fresh && view !== "workflows") app.innerHTML = "";
  if (view === "workflows" && id) {
    const wid = decodeURIComponent(id);
    store.watched.add(wid);
    if (!store.workflows.get(wid)?.state) void loadWorkflow(wid);
    const ui = workflowUi.get(wid) ?? { selected: null, frame: null };
    workflowUi.set(wid, ui);
    if (fresh) app.innerHTML = "";
    renderWorkflow(app, store, wid, ui);
  } else if (view === "workflows") {
    if (fresh) app.innerHTML = "";
    renderWorkflows(app, store, listUi);
  } else if (view === "actors" && id) {
    const aid = decodeURIComponent(id);
    const a = store.actor(aid);
    if (fresh) void loadActor(aid);
    renderActor(app, store, a, a.logic ? logic.get(a.logic) : undefined);
  } else if (view === "actors") {
    renderActors(app, store);
  } else {
    renderMesh(app, store);
  }
}

async function loadWorkflow(id: string): Promise<void> {
  try {
    store.workflow(id, await getJson(`/v1/workflows/${encodeURIComponent(id)}`, WorkflowStateSchema));
    store.dirty.add("load");
    store.changed();
  } catch (err) {
    // The message may echo the id from the address bar: text, never markup.
    setHtml(app, html`<p class="error">${(err as Error).message}</p>`);
  }
}

async function loadActor(id: string): Promise<void> {
  try {
    const d = await getJson(`/v1/actors/${encodeURIComponent(id)}`, ActorDescriptionSchema);
    const a = store.actor(id);
    a.logic = d.logic;
    a.status = d.status;
    a.host = d.node;
    a.epoch = d.epoch;
    if (a.hosts.length === 0) a.hosts.push(...d.history.map((h) => ({ node: h.node, epoch: h.epoch })));
    a.snapshot ??= d.snapshot;
    if (!logic.has(d.logic)) logic.set(d.logic, await getJson(`/v1/logic/${encodeURIComponent(d.logic)}`, LogicInfoSchema));
    store.dirty.add("load");
    store.changed();
  } catch (err) {
    app.insertAdjacentHTML("beforeend", html`<p class="error">${(err as Error).message}</p>`.text);
  }
}

initTokenControls();
boot().catch((err: Error) => setHtml(app, html`<p class="error">${err.message}</p>`));
