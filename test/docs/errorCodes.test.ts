import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { MeshErrors } from "@shoal/mesh";
import { NodeErrors } from "@shoal/node";
import { CloseCodes, ProtocolErrors } from "@shoal/protocol";
import { RuntimeErrors } from "@shoal/runtime";
import { ToolErrors } from "@shoal/tools";
import { TransportErrors } from "@shoal/transport";
import { WorkflowErrors } from "@shoal/workflow";
import { describe, expect, it } from "vitest";

const readme = (dir: string) => readFileSync(resolve(import.meta.dirname, "../..", dir, "README.md"), "utf8");

describe("every error code is documented in its package README", () => {
  it.each([
    ["packages/protocol", ProtocolErrors],
    ["packages/transport", TransportErrors],
    ["packages/mesh", MeshErrors],
    ["packages/runtime", RuntimeErrors],
    ["packages/tools", ToolErrors],
    ["packages/workflow", WorkflowErrors],
    ["apps/node", NodeErrors],
  ] as const)("%s", (dir, catalog) => {
    const text = readme(dir);
    for (const [code, spec] of Object.entries(catalog)) {
      expect(text, `${code} missing from ${dir}/README.md`).toContain(`| \`${code}\` |`);
      expect(spec.doc.length).toBeGreaterThan(10);
    }
  });

  it("every close code is in the transport README", () => {
    const text = readme("packages/transport");
    for (const code of Object.values(CloseCodes)) expect(text).toContain(`| ${code} |`);
  });
});
