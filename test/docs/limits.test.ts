import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { LIMITS } from "@shoal/protocol";
import { describe, expect, it } from "vitest";

describe("every admission limit is documented", () => {
  it("in the README's Limits table, with its flag and the code a caller gets past it", () => {
    const readme = readFileSync(resolve(import.meta.dirname, "../../README.md"), "utf8");
    const table = readme.slice(readme.indexOf("## Limits"), readme.indexOf("## HTTP API"));
    for (const [key, limit] of Object.entries(LIMITS)) {
      expect(table, `--${key} missing from the README's Limits table`).toContain(`| \`--${key}\` |`);
      expect(table).toContain(limit.doc);
    }
  });
});
