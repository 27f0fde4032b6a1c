import { esc } from "../dom.js";
import type { Store } from "../store.js";

/** Every node with its status, capabilities, tools and slots, and the links of the mesh. */
export function renderMesh(root: HTMLElement, store: Store): void {
  const nodes = [...store.nodes.values()].sort((a, b) => a.name.localeCompare(b.name));
  const n = nodes.length;
  const r = 120;
  const pos = new Map(nodes.map((node, i) => [node.name, { x: 160 + r * Math.cos((2 * Math.PI * i) / Math.max(n, 1)), y: 150 + r * Math.sin((2 * Math.PI * i) / Math.max(n, 1)) }]));
  const links: string[] = [];
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
      links.push(`<line x1="${p.x}" y1="${p.y}" x2="${q.x}" y2="${q.y}" class="link ${up ? "up" : "broken"}"/>`);
    }
  }
  const dots = nodes
    .map((node) => {
      const p = pos.get(node.name);
      return p ? `<g class="dot ${node.status}"><circle cx="${p.x}" cy="${p.y}" r="16"/><text x="${p.x}" y="${p.y + 32}">${esc(node.name)}</text></g>` : "";
    })
    .join("");
  const up = nodes.filter((x) => x.status === "up").length;
  root.innerHTML = `
    <h2>Mesh <small id="mesh-summary">${up} of ${n} nodes up, as ${esc(store.self)} sees it</small></h2>
    <div class="mesh">
      <svg class="mesh-graph" width="330" height="310">${links.join("")}${dots}</svg>
      <div class="cards">${nodes
        .map(
          (node) => `
        <div class="node-card ${node.status}" data-node="${esc(node.name)}" data-status="${node.status}">
          <div class="title"><span class="badge ${node.status}">${node.status}</span> ${esc(node.name)}${node.self ? " (this node)" : ""}</div>
          <div>${esc(node.address)} · id ${esc(node.id.slice(0, 8))} · incarnation ${node.incarnation}</div>
          <div>slots <b>${node.running}/${node.slots}</b> · load ${Math.round(node.load * 100)}%</div>
          <div>capabilities: ${node.capabilities.map((c) => `<span class="tag">${esc(c)}</span>`).join(" ") || "-"}</div>
          <div>tools: ${node.tools.map((t) => `<span class="tag tool">${esc(t)}</span>`).join(" ") || "-"}</div>
          <div class="muted">last seen ${node.last_seen_ms === null ? "-" : `${node.last_seen_ms} ms ago`}</div>
        </div>`,
        )
        .join("")}</div>
    </div>`;
}
