import { ShoalError } from "@shoal/protocol";
import { describe, expect, it } from "vitest";
import { type LocalWorkflows, WorkflowDirectory } from "./WorkflowDirectory.js";
import { newWorkflowId } from "./workflowIds.js";

/** This node ("self") and peers that answer a read as `answers` says: an error code, or a state. */
function directory(answers: Record<string, string>) {
  const members = ["self", ...Object.keys(answers)].map((id) => ({ id, name: id, status: "up", self: id === "self" }));
  const mesh = { members: () => members, member: (id: string) => members.find((m) => m.id === id) };
  const transport = {
    handle() {},
    async request(peer: string) {
      const code = answers[peer] as string;
      if (code === "answer") return { workflow_id: "x", status: "complete" };
      throw new ShoalError(code, `${code} from ${peer}`);
    },
  };
  const local: LocalWorkflows = {
    owns: () => false,
    copyOwner: () => undefined,
    settled: () => true,
    checkTakenOver: async () => {},
    knowledgeOf: () => ({ resumingHere: false, joining: false }),
    state: () => {
      throw new Error("not held here");
    },
    result: () => {
      throw new Error("not held here");
    },
    cancel: () => {
      throw new Error("not held here");
    },
    list: () => [],
  };
  return new WorkflowDirectory({ selfId: "self", nodeName: "self", mesh: mesh as never, transport: transport as never, local });
}

describe("WorkflowDirectory: 404 only when every live node was asked and none knows it", () => {
  const id = newWorkflowId("acceptor");

  it("404 when the node the id names and every other live node say they do not know it", async () => {
    await expect(directory({ acceptor: "SHOAL_ERR_UNKNOWN_WORKFLOW", b: "SHOAL_ERR_UNKNOWN_WORKFLOW" }).state(id)).rejects.toMatchObject({ code: "SHOAL_ERR_UNKNOWN_WORKFLOW" });
  });

  it("503 when the node the id names denies it but a live peer could not be asked: it may own it now (a takeover the acceptor forgot)", async () => {
    await expect(directory({ acceptor: "SHOAL_ERR_UNKNOWN_WORKFLOW", taker: "SHOAL_ERR_NOT_CONNECTED" }).state(id)).rejects.toMatchObject({
      code: "SHOAL_ERR_OWNER_UNAVAILABLE",
      message: /1 of them could not be asked/,
    });
    await expect(directory({ acceptor: "SHOAL_ERR_UNKNOWN_WORKFLOW", taker: "SHOAL_ERR_REQUEST_TIMEOUT" }).state(id)).rejects.toMatchObject({ code: "SHOAL_ERR_OWNER_UNAVAILABLE" });
  });

  it("any answer wins", async () => {
    await expect(directory({ acceptor: "SHOAL_ERR_UNKNOWN_WORKFLOW", taker: "answer" }).state(id)).resolves.toMatchObject({ status: "complete" });
  });
});
