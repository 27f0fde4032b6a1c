import type { InspectEvent } from "@shoal/protocol";

/**
 * The node this page came from. With a cluster secret, open `/devtools?token=SECRET`: the page
 * keeps it for this tab and sends it with every call.
 */
const params = new URLSearchParams(location.search);
const token = params.get("token") ?? sessionStorage.getItem("shoal-token") ?? undefined;
if (params.get("token")) sessionStorage.setItem("shoal-token", params.get("token") as string);

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const body = await res.json();
  if (!res.ok) throw new Error(body?.error?.message ?? `${path}: HTTP ${res.status}`);
  return body as T;
}

/** Opens `WS /v1/inspect` and reconnects with backoff when it drops. */
export function openInspect(onEvents: (events: InspectEvent[]) => void, onStatus: (status: "open" | "closed") => void): void {
  let delay = 250;
  const connect = () => {
    const url = new URL("/v1/inspect", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (token) url.searchParams.set("token", token);
    const ws = new WebSocket(url);
    ws.onopen = () => {
      delay = 250;
      onStatus("open");
    };
    ws.onmessage = (m) => onEvents(JSON.parse(m.data as string) as InspectEvent[]);
    ws.onclose = () => {
      onStatus("closed");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 5_000);
    };
  };
  connect();
}
