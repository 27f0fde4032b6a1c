/** Escapes text for HTML. */
export const esc = (v: unknown): string =>
  String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);

export const fmtTime = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleTimeString() : "-");

export const json = (v: unknown) => `<pre>${esc(JSON.stringify(v, null, 2))}</pre>`;
