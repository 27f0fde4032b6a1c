import { describe, expect, it } from "vitest";
import type { Logger } from "./Logger.js";
import { LogLimiter } from "./LogLimiter.js";

function recorder() {
  const lines: { obj: Record<string, unknown>; msg: string }[] = [];
  const write = (obj: Record<string, unknown>, msg: string) => lines.push({ obj, msg });
  const log = { warn: write, info: write } as unknown as Logger;
  return { log, lines };
}

describe("LogLimiter", () => {
  it("lets perWindow lines through per window and reports how many it held back", () => {
    let now = 0;
    const { log, lines } = recorder();
    const limiter = new LogLimiter(log, { perWindow: 3, windowMs: 1_000, now: () => now });
    for (let i = 0; i < 100; i++) limiter.warn({ i }, "bad frame");
    expect(lines.map((l) => l.obj.i)).toEqual([0, 1, 2]);
    now = 1_000;
    limiter.warn({ i: 100 }, "bad frame");
    expect(lines.at(-1)?.obj).toEqual({ i: 100, suppressedBefore: 97 });
    limiter.warn({ i: 101 }, "bad frame");
    expect(lines.at(-1)?.obj).toEqual({ i: 101 });
  });
});
