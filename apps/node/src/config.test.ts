import { mkdtempSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { NODE_CONFIG_DEFAULTS } from "@shoal/protocol";
import { describe, expect, it } from "vitest";
import { readSecretFile, resolveNodeConfig } from "./config.js";

const file = (name: string, text: string) => {
  const path = join(mkdtempSync(join(tmpdir(), "cfg-")), name);
  writeFileSync(path, text);
  return path;
};

describe("resolveNodeConfig", () => {
  it("fills defaults, naming the data dir after the node", () => {
    const c = resolveNodeConfig({ name: "cam-1" });
    expect(c).toMatchObject({ ...NODE_CONFIG_DEFAULTS, name: "cam-1", "data-dir": join(homedir(), ".shoal", "cam-1") });
  });

  it("layers defaults < file < flags", () => {
    const config = file("n.yaml", "name: file-name\nslots: 2\ncapabilities: [camera]\n");
    const c = resolveNodeConfig({ config, slots: 8 });
    expect(c).toMatchObject({ name: "file-name", slots: 8, capabilities: ["camera"], port: 7400 });
  });

  it("blames the flag when the flag is wrong and the file when the file is", () => {
    const config = file("n.yaml", "slots: 2\n");
    expect(() => resolveNodeConfig({ config, join: ["nope"] })).toThrow(expect.objectContaining({ code: "SHOAL_ERR_BAD_FLAG", message: expect.stringMatching(/^--join/) }));
    const bad = file("bad.yaml", "name: 'has space'\n");
    expect(() => resolveNodeConfig({ config: bad })).toThrow(expect.objectContaining({ code: "SHOAL_ERR_BAD_CONFIG", path: ["name"] }));
  });

  it("refuses unknown keys and non-mappings in a config file", () => {
    expect(() => resolveNodeConfig({ config: file("a.yaml", "prot: 1\n") })).toThrow(/Unrecognized key/);
    expect(() => resolveNodeConfig({ config: file("b.yaml", "- a\n- b\n") })).toThrow(expect.objectContaining({ code: "SHOAL_ERR_BAD_CONFIG" }));
  });

  it("checks the detector thresholds against each other", () => {
    expect(() => resolveNodeConfig({ name: "a", "heartbeat-ms": 100, "suspect-after-ms": 300, "down-after-ms": 200 })).toThrow(/down-after-ms must not be less/);
  });
});

describe("readSecretFile", () => {
  it("trims whitespace and refuses an empty file", () => {
    expect(readSecretFile(file("s", "  sesame \n"))).toBe("sesame");
    expect(() => readSecretFile(file("e", "\n\n"))).toThrow(expect.objectContaining({ code: "SHOAL_ERR_BAD_SECRET_FILE" }));
  });
});
