/** Escapes text for HTML. */
export const esc = (v: unknown): string =>
  String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);

/** Markup this page built with `html`: the only thing interpolated into `html` unescaped. */
export class Html {
  constructor(readonly text: string) {}
}

const render = (v: unknown): string => (v instanceof Html ? v.text : Array.isArray(v) ? v.map(render).join("") : esc(v));

/**
 * A template for markup whose every `${}` is escaped, whatever it holds (an id from the URL, an
 * error message, a node name from gossip), unless it is `Html` made by this same tag, or an
 * array of those. So nothing from the network or the address bar is ever markup.
 */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] ?? "";
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? "");
  });
  return new Html(out);
}

/** Joins markup with a separator, or gives `empty` (text) for none. */
export const joinHtml = (parts: Html[], sep: string, empty = ""): Html => new Html(parts.length ? parts.map((p) => p.text).join(esc(sep)) : esc(empty));

export function setHtml(el: Element, h: Html): void {
  el.innerHTML = h.text;
}

export const fmtTime = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleTimeString() : "-");

export const json = (v: unknown): Html => html`<pre>${JSON.stringify(v, null, 2)}</pre>`;
