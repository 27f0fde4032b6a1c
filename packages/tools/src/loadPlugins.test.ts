import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createMachine } from "xstate";
import { defineAgent, defineTool, isAgent } from "./definitions.js";
import { loadPlugins, parseDefinitions } from "./loadPlugins.js";

describe("plugin definitions", () => {
  it("accepts plain objects and defineTool/defineAgent alike", () => {
    const defs = parseDefinitions(
      [{ name: "plain", run: () => 1 }, defineTool({ name: "typed", capabilities: ["gpu"], run: () => 2 }), defineAgent({ name: "agent", machine: createMachine({}) })],
      "test",
    );
    expect(defs.map((d) => [d.name, isAgent(d)])).toEqual([
      ["plain", false],
      ["typed", false],
      ["agent", true],
    ]);
    expect(parseDefinitions({ name: "single", run: () => 0 }, "test")).toHaveLength(1);
  });

  it.each([
    [{ name: "x" }, /export 0 \(x\) is not a valid tool.*run/],
    [{ name: "bad name", run: (): number => 1 }, /name/],
    [{ name: "x", run: (): number => 1, colour: "blue" }, /colour/],
    [{ name: "x", machine: {} }, /agent.*XState machine/],
    [42, /export 0 is not a valid tool/],
  ])("refuses %j naming the problem", (def, pattern) => {
    expect(() => parseDefinitions(def, "test")).toThrow(expect.objectContaining({ code: "SHOAL_ERR_BAD_PLUGIN", message: expect.stringMatching(pattern) }));
  });

  it("loads modules by path and reports ones that cannot load", async () => {
    const dir = mkdtempSync(join(tmpdir(), "plugin-"));
    writeFileSync(join(dir, "p.mjs"), "export default [{ name: 'from_file', async run(input) { return input; } }];");
    writeFileSync(join(dir, "broken.mjs"), "export default {");
    const defs = await loadPlugins(["./p.mjs"], dir);
    expect(defs.map((d) => d.name)).toEqual(["from_file"]);
    await expect(loadPlugins(["./broken.mjs"], dir)).rejects.toMatchObject({ code: "SHOAL_ERR_BAD_PLUGIN", message: /cannot load/ });
    await expect(loadPlugins(["no-such-package-xyz"], dir)).rejects.toMatchObject({ code: "SHOAL_ERR_BAD_PLUGIN" });
  });
});
