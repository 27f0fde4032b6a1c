import type { LogicInfo, StateChart } from "@shoal/protocol";
import { type Html, html, json, setHtml } from "../dom.js";
import type { ActorEntry, Store } from "../store.js";

/** States that are active in a snapshot value, as full ids (`counter.counting`). */
function activeIds(rootId: string, value: unknown): Set<string> {
  const out = new Set<string>([rootId]);
  const walk = (prefix: string, v: unknown) => {
    if (typeof v === "string") out.add(`${prefix}.${v}`);
    else if (v && typeof v === "object") {
      for (const [k, child] of Object.entries(v)) {
        out.add(`${prefix}.${k}`);
        walk(`${prefix}.${k}`, child);
      }
    }
  };
  walk(rootId, value);
  return out;
}

function chartHtml(node: StateChart, active: Set<string>): Html {
  const on = active.has(node.id);
  const transitions = node.transitions.map(
    (t) => html`<li>${t.event.replace(/^xstate\.after\.(\d+)\..*/, "after $1 ms")}${t.targets.length ? ` → ${t.targets.map((x) => x.split(".").pop()).join(", ")}` : ""}</li>`,
  );
  return html`<div class="state ${node.type}${on ? " active" : ""}" data-state-id="${node.id}">
    <div class="state-name">${node.key}${node.type === "final" ? " (final)" : ""}</div>
    ${transitions.length ? html`<ul class="transitions">${transitions}</ul>` : ""}
    ${node.states.length ? html`<div class="children">${node.states.map((c) => chartHtml(c, active))}</div>` : ""}
  </div>`;
}

const actorLink = (id: string) => html`<a href="#/actors/${encodeURIComponent(id)}">${id}</a>`;
const workflowLink = (id: string) => html`<a href="#/workflows/${encodeURIComponent(id)}">${id}</a>`;

/** Actors this page has seen, with where they run now. */
export function renderActors(root: HTMLElement, store: Store): void {
  const rows = [...store.actors.values()].reverse().slice(0, 500);
  setHtml(
    root,
    html`<h2>Actors <small>${store.actors.size} seen</small></h2>
    <table class="actors"><tr><th>actor</th><th>logic</th><th>status</th><th>node</th><th>epoch</th><th>workflow</th></tr>
    ${rows.map(
      (a) =>
        html`<tr><td>${actorLink(a.id)}</td><td>${a.logic ?? ""}</td><td>${a.status}</td><td>${a.host ?? "-"}</td><td>${a.epoch}</td><td>${a.workflowId ? workflowLink(a.workflowId) : ""}</td></tr>`,
    )}</table>`,
  );
}

/**
 * One actor on whichever node it runs: its state chart with the current state highlighted, a
 * live event log, and where it has lived (a migration shows as a new host with a new epoch).
 */
export function renderActor(root: HTMLElement, store: Store, a: ActorEntry, logic: LogicInfo | undefined): void {
  const value = a.snapshot?.value;
  const chart = logic?.chart ? chartHtml(logic.chart, activeIds(logic.chart.id, value)) : html`<p class="muted">${logic ? "a tool: no state chart" : "loading chart…"}</p>`;
  setHtml(
    root,
    html`
    <h2>Actor ${a.id} <small>${a.logic ?? ""}</small></h2>
    <p>now on <b id="actor-host">${a.host ?? "-"}</b> · status <b id="actor-status">${a.status}</b> · epoch ${a.epoch}
      ${a.hosts.length > 1 ? ` · moved: ${a.hosts.map((h) => `${h.node} (epoch ${h.epoch})`).join(" → ")}` : ""}
      ${a.workflowId ? html` · workflow ${workflowLink(a.workflowId)}` : ""}</p>
    <div class="actor-view">
      <section><h3>state <span id="actor-state">${JSON.stringify(value ?? null)}</span></h3><div class="chart">${chart}</div>
        <h4>context</h4>${json(a.snapshot?.context ?? null)}</section>
      <section><h3>events</h3><ol class="event-log" id="event-log">${a.log
        .slice()
        .reverse()
        .map((l) => html`<li class="${l.type}"><time>${new Date(l.at).toLocaleTimeString()}</time> <b>${l.node}</b> ${l.text}</li>`)}</ol></section>
    </div>`,
  );
  void store;
}
