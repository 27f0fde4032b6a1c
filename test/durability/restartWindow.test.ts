import { afterEach, describe, expect, it } from "vitest";
import { type NodeProcess, stopAll, until } from "../support/shoalProcess.js";
import { chainSpec, quickSpec, resultOf, submit, workflowMesh } from "../support/workflowMesh.js";

const started: NodeProcess[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
});

interface Answer {
  node: string;
  id: string;
  status: number;
  code?: string;
  workflowStatus?: string;
}

describe("the moments after an owner restarts (real nodes)", () => {
  it("no node answers 404 for its workflows: the ended one is readable at once, the running one 503 SHOAL_ERR_RESUMING until it is taken back", async () => {
    // w-a runs no steps, so the running workflow's only copies are its store and its backup's.
    const { nodes } = await workflowMesh([{ name: "w-a", slots: 0 }, { name: "w-b" }, { name: "w-c" }], started);
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const ended = await submit(a, quickSpec("ended-before"));
    expect((await resultOf(a, ended)).status).toBe("complete");
    const running = await submit(a, chainSpec("running-through", 3_000));
    await a.kill("SIGKILL");
    a.logs.length = 0;
    a.restart();
    const answers: Answer[] = [];
    const ask = async (n: NodeProcess, id: string) => {
      const r = await n.get(`/v1/workflows/${id}`).catch(() => undefined); // w-a refuses until it listens
      if (r) answers.push({ node: n.name, id, status: r.status, code: r.json?.error?.code, workflowStatus: r.json?.status });
    };
    const resumedAt = () => a.logsMatching((l) => l.msg === "workflows taken back from the store")[0]?.time as number | undefined;
    // Every node, over and over, from the restart until a second after w-a has taken its store back.
    await until(
      async () => {
        await Promise.all([a, b, c].flatMap((n) => [ask(n, ended), ask(n, running)]));
        const at = resumedAt();
        return at !== undefined && Date.now() - at > 1_000;
      },
      20_000,
      () => "w-a never took its store back",
    );
    const fromA = answers.filter((x) => x.node === "w-a");
    expect(fromA.length, "w-a answered before and after it took its store back").toBeGreaterThan(0);
    expect(answers.filter((x) => x.status === 404), "404 answers").toEqual([]);
    for (const x of answers.filter((y) => y.status !== 200)) {
      expect(x.status, JSON.stringify(x)).toBe(503);
      expect(["SHOAL_ERR_RESUMING", "SHOAL_ERR_OWNER_UNAVAILABLE"], JSON.stringify(x)).toContain(x.code);
    }
    // What had ended before the kill needs no peer: w-a answers for it from its first answer on.
    expect(fromA.filter((x) => x.id === ended).every((x) => x.status === 200 && x.workflowStatus === "complete")).toBe(true);
    // And the running one ends, whoever finished it.
    expect((await resultOf(b, running, 20_000)).status).toBe("complete");
    for (const n of [a, b, c]) expect((await n.get(`/v1/workflows/${running}`)).json.status, n.name).toBe("complete");
  });
});
