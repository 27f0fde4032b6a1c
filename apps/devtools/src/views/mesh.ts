import { type Html, html, joinHtml, setHtml } from "../dom.js";
import type { Store } from "../store.js";

/** Every node with its status, capabilities, tools and slots, and the links of the mesh. */
export function renderMesh(root: HTMLElement, store: Store): void {
  const nodes = [...store.nodes.values()].sort((a, b) => a.name.localeCompare(b.name));
  const n = nodes.length;
  const r = 120;
  const pos = new Map(nodes.map((node, i) => [node.name, { x: 160 + r * Math.cos((2 * Math.PI * i) / Math.max(n, 1)), y: 150 + r * Math.sin((2 * Math.PI * i) / Math.max(n, 1)) }]));
  const links: Html[] = [];
  // Up nodes keep a full mesh of connections; a link to a node that is not up is drawn dashed.
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const a = nodes[i];
      const b = nodes[j];
      if (!a || !b) continue;
      const p = pos.get(a.name);
      const q = pos.get(b.name);
      if (!p || !q) continue;
      const up = a.status === "up" && b.status === "up";
      links.push(html`<line x1="${p.x}" y1="${p.y}" x2="${q.x}" y2="${q.y}" class="link ${up ? "up" : "broken"}"/>`);
    }
  }
  const dots = nodes.map((node) => {
    const p = pos.get(node.name);
    return p ? html`<g class="dot ${node.status}"><circle cx="${p.x}" cy="${p.y}" r="16"/><text x="${p.x}" y="${p.y + 32}">${node.name}</text></g>` : html``;
  });
  const up = nodes.filter((x) => x.status === "up").length;
  setHtml(
    root,
    html`
    <h2>Mesh <small id="mesh-summary">${up} of ${n} nodes up, as ${store.self} sees it</small></h2>
    <div class="mesh">
      <svg class="mesh-graph" width="330" height="310">${links}${dots}</svg>
      <div class="cards">${nodes.map(
        (node) => html`
        <div class="node-card ${node.status}" data-node="${node.name}" data-status="${node.status}">
          <div class="title"><span class="badge ${node.status}">${node.status}</span> ${node.name}${node.self ? " (this node)" : ""}</div>
          <div>${node.address} · id ${node.id.slice(0, 8)} · incarnation ${node.incarnation}</div>
          <div>slots <b>${node.running}/${node.slots}</b> · load ${Math.round(node.load * 100)}%</div>
          <div>capabilities: ${joinHtml(node.capabilities.map((c) => html`<span class="tag">${c}</span>`), " ", "-")}</div>
          <div>tools: ${joinHtml(node.tools.map((t) => html`<span class="tag tool">${t}</span>`), " ", "-")}</div>
          <div class="muted">last seen ${node.last_seen_ms === null ? "-" : `${node.last_seen_ms} ms ago`}</div>
        </div>`,
      )}</div>
    </div>`,
  );
}
