import { ApiErrorResponseSchema, ShoalError } from "@shoal/protocol";

/** GET or POST one API route of a node; a 4xx/5xx becomes the ShoalError the node sent. */
export async function fetchApi(node: string, path: string, options: { secret?: string | undefined; method?: string; body?: unknown } = {}): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`http://${node}${path}`, {
      method: options.method ?? "GET",
      headers: {
        ...(options.secret !== undefined && { authorization: `Bearer ${options.secret}` }),
        ...(options.body !== undefined && { "content-type": "application/json" }),
      },
      ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    // fetch wraps the socket error, sometimes in an AggregateError (one per address tried).
    const inner = (err as { cause?: { code?: string; errors?: { code?: string }[] } }).cause;
    const cause = inner?.code ?? inner?.errors?.[0]?.code ?? (err as Error).message;
    throw new ShoalError("SHOAL_ERR_UNREACHABLE", `cannot reach a node at ${node} (${cause})`, { cause: err });
  }
  const body: unknown = await res.json().catch(() => undefined);
  if (!res.ok) {
    const parsed = ApiErrorResponseSchema.safeParse(body);
    if (parsed.success) throw new ShoalError(parsed.data.error.code, parsed.data.error.message);
    throw new ShoalError("SHOAL_ERR_UNREACHABLE", `${node} answered HTTP ${res.status} to ${path}`);
  }
  return body;
}
