import type { InspectEvent } from "@shoal/protocol";
import { ApiErrorResponseSchema, InspectEventSchema } from "@shoal/protocol/web";
import { z } from "zod";
import { askToken, dropToken, storedToken } from "./auth.js";

const InspectBatchSchema = z.array(InspectEventSchema);

/** What a node answered that this page cannot read: a node of another version, or not a node. */
function unreadable(what: string, error: z.ZodError): Error {
  const issue = error.issues[0];
  return new Error(`${what}: the node's answer is not what this devtools reads (${issue ? `${issue.path.join(".") || "body"}: ${issue.message}` : "invalid"})`);
}

/**
 * How the node closes `/v1/inspect` for a missing or bad token: 4000 + the HTTP status the same
 * token gets from the API.
 */
const CLOSE_UNAUTHORIZED = 4401;

/**
 * A GET on the node this page came from, with the API token as `Authorization: Bearer` when
 * the page has one. A 401 asks for a token (once for the whole page) and tries again with it.
 */
export async function getJson<T>(path: string, schema: z.ZodType<T>): Promise<T> {
  for (;;) {
    const token = storedToken();
    const res = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const body: unknown = await res.json().catch(() => undefined);
    const message = ApiErrorResponseSchema.safeParse(body).data?.error.message;
    if (res.status === 401) {
      if (token) dropToken(token);
      await askToken(message ?? "this node wants an API token");
      continue;
    }
    if (!res.ok) throw new Error(message ?? `${path}: HTTP ${res.status}`);
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw unreadable(path, parsed.error);
    return parsed.data;
  }
}

/**
 * Opens `WS /v1/inspect` (wss: when the page came over https) and reconnects with backoff when
 * it drops. A browser cannot put a header on a WebSocket, so the token goes as the first message;
 * a node without tokens ignores it. A close for a bad token asks for a new one before reconnecting.
 */
export function openInspect(
  onEvents: (events: InspectEvent[]) => void,
  onStatus: (status: "open" | "closed" | "token") => void,
  onError: (error: Error) => void,
): void {
  let delay = 250;
  const connect = () => {
    const url = new URL("/v1/inspect", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    const token = storedToken();
    ws.onopen = () => {
      if (token) ws.send(JSON.stringify({ type: "auth", token }));
      delay = 250;
      onStatus("open");
    };
    ws.onmessage = (m) => {
      let data: unknown;
      try {
        data = JSON.parse(String(m.data));
      } catch {
        data = undefined;
      }
      const parsed = InspectBatchSchema.safeParse(data);
      if (parsed.success) onEvents(parsed.data);
      else onError(unreadable("/v1/inspect", parsed.error));
    };
    ws.onclose = (e) => {
      if (e.code === CLOSE_UNAUTHORIZED) {
        if (token) dropToken(token);
        onStatus("token");
        void askToken(e.reason || "this node wants an API token").then(connect);
        return;
      }
      onStatus("closed");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 5_000);
    };
  };
  connect();
}
