import { type ErrorBody, clipMessage } from "./errorBody.js";
/**
 * The one error class of Shoal. Every package keeps its own `as const` catalog of codes and builds
 * errors from it, so a code is stable across the wire, the HTTP API and the logs.
 */
export interface ErrorSpec {
  /** HTTP status used when this error reaches an API caller. */
  readonly status: number;
  /** One line for the package README: when this code is raised. */
  readonly doc: string;
}

export type ErrorCatalog = Readonly<Record<string, ErrorSpec>>;

export class ShoalError<Code extends string = string> extends Error {
  override readonly name = "ShoalError";
  readonly code: Code;
  /** Where in the offending input the problem is (a zod path), when there is one. */
  readonly path: (string | number)[] | undefined;
  /** For a refusal under load: when trying again makes sense (HTTP `Retry-After`). */
  readonly retryAfterMs: number | undefined;

  constructor(code: Code, message: string, options: { cause?: unknown; path?: (string | number)[]; retryAfterMs?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.path = options.path;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** The `{code, message, path?}` body that crosses the wire and the HTTP API. */
  toBody(): ErrorBody {
    const message = clipMessage(this.message);
    return this.path && this.path.length > 0 ? { code: this.code, message, path: this.path.slice(0, 100) } : { code: this.code, message };
  }
}

export function isShoalError(err: unknown, code?: string): err is ShoalError {
  return err instanceof ShoalError && (code === undefined || err.code === code);
}
