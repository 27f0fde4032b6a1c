/**
 * The slice of pino's logger that packages use. Only `apps/node` creates the root logger; every
 * package takes one and calls `.child()`, so a pino logger fits here as it is.
 */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  child(bindings: Record<string, unknown>): Logger;
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
}

const noop: LogFn = () => {};

/** A logger that drops everything: for tests and embedders that do not want logs. */
export const silentLogger: Logger = {
  child: () => silentLogger,
  fatal: noop,
  error: noop,
  warn: noop,
  info: noop,
  debug: noop,
  trace: noop,
};
