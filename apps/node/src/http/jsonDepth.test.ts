import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { jsonDeeperThan } from "./jsonDepth.js";

/** Nesting of a parsed value, counted without recursion (the thing under test must not recurse either). */
function depthOf(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== "object") continue;
    max = Math.max(max, d + 1);
    for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

describe("jsonDeeperThan", () => {
  it("agrees with the depth of the parsed value, whatever brackets and escapes the strings hold", () => {
    const tricky = fc.oneof(fc.string(), fc.constantFrom('"', "\\", "[", "{", "\\\"[", "]]}}", "\\\\"));
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: "small" }, tricky, fc.integer(), fc.constant(null), fc.array(tie("node")), fc.dictionary(tricky, tie("node"))),
    })).node;
    fc.assert(
      fc.property(value, fc.integer({ min: 0, max: 8 }), (v, max) => {
        expect(jsonDeeperThan(JSON.stringify(v), max)).toBe(depthOf(v) > max);
      }),
    );
  });

  it("finds the limit exactly: 64 deep passes a limit of 64, 65 does not", () => {
    const nested = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
    expect(jsonDeeperThan(nested(64), 64)).toBe(false);
    expect(jsonDeeperThan(nested(65), 64)).toBe(true);
    expect(jsonDeeperThan(`{"a":${nested(63)}}`, 64)).toBe(false);
  });

  it("reads a million levels without overflowing the stack", () => {
    expect(jsonDeeperThan("[".repeat(1_000_000), 64)).toBe(true);
    expect(jsonDeeperThan(`"${"[".repeat(1_000_000)}"`, 64)).toBe(false);
  });
});
