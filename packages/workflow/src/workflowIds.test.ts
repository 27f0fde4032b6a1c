import { WorkflowIdSchema } from "@shoal/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { newWorkflowId, ownerTag, ownerTagOf } from "./workflowIds.js";

describe("workflow ids name their owner", () => {
  it("any node id: the id is valid and carries that node's tag", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 64 }), (nodeId) => {
        const id = newWorkflowId(nodeId);
        expect(WorkflowIdSchema.safeParse(id).success).toBe(true);
        expect(ownerTagOf(id)).toBe(ownerTag(nodeId));
      }),
    );
  });

  it("ids made before owner tags, and what is not a workflow id, carry none", () => {
    expect(ownerTagOf("wf_abcdef123456")).toBeUndefined();
    expect(ownerTagOf("wf_nothinghere")).toBeUndefined();
    expect(ownerTagOf("../etc/passwd")).toBeUndefined();
    expect(ownerTag("node-1")).not.toBe(ownerTag("node-2"));
  });
});
