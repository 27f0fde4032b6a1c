import { afterEach, describe, expect, it } from "vitest";
import { type NodeProcess, stopAll, until } from "../support/shoalProcess.js";
import { resultOf, submit, workflowMesh } from "../support/workflowMesh.js";

const started: NodeProcess[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
});

const counting = {
  name: "counting",
  steps: [
    { id: "count", agent: "counter", input: { start: 0 } },
    { id: "report", tool: "echo_tool", needs: ["count"], input: { counted: { $from: "count" } } },
  ],
};
const event = (n: NodeProcess, actorId: string, type: string) => n.post(`/v1/actors/${actorId}/events`, { event: { type } });
const time = (l: Record<string, unknown>) => l.time as number;

describe("agents resume after an owner takeover (real nodes)", () => {
  it("the owner SIGKILLed mid-count: its backup starts the agent from the checkpoint its copy carries, with its count, and the workflow ends with the whole count", async () => {
    // The owner runs no steps: the agent runs on a peer, its checkpoints reach the owner (its supervisor).
    const { nodes } = await workflowMesh([{ name: "k-a", slots: 0 }, { name: "k-b" }, { name: "k-c" }], started);
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const id = await submit(a, counting);
    const running = async () => (await a.get(`/v1/workflows/${id}`)).json.steps?.count;
    await until(async () => (await running())?.status === "running", 10_000, () => "the agent step never ran");
    const first = (await running()).actor as string;
    for (let i = 0; i < 3; i++) expect((await event(a, first, "INC")).status).toBe(202);
    // Its supervisor holds the checkpoint with the 3 INCs before the last 202: the owner's next copy carries it.
    const after = Date.now();
    const copies = () => a.logsMatching((l) => l.msg === "agent checkpoints copied to the workflow's backups" && l.workflowId === id);
    await until(() => copies().some((l) => time(l) > after), 5_000, () => "the owner copied no checkpoint after the events");
    const [checkpoint = ""] = (copies().find((l) => time(l) > after)?.checkpoints ?? []) as string[];
    expect(checkpoint).toMatch(/^count@\d+$/);
    const kept = (n: NodeProcess) => n.logsMatching((l) => l.msg === "kept a copy of a workflow" && l.workflowId === id && l.answer === "stored" && ((l.checkpoints as string[] | undefined) ?? []).includes(checkpoint));
    await until(() => kept(b).length + kept(c).length > 0, 5_000, () => `no backup stored ${checkpoint}`);
    // Throttled: not a copy per event.
    expect(copies().length).toBeLessThanOrEqual(4);

    await a.kill("SIGKILL");
    const taker = kept(b).length > 0 ? b : c;
    await until(() => taker.logsMatching((l) => l.msg === "took over a workflow whose owner is down" && l.workflowId === id).length === 1, 10_000, () => "the backup did not take over");
    const moved = async () => {
      const step = (await taker.get(`/v1/workflows/${id}`)).json.steps?.count;
      if (!step?.actor || step.actor === first) return undefined;
      const actor = (await taker.get(`/v1/actors/${step.actor}`)).json;
      return actor.status === "running" ? { step, actor } : undefined;
    };
    await until(async () => (await moved()) !== undefined, 10_000, () => "the agent did not start again on the new owner");
    const { step, actor } = (await moved()) as NonNullable<Awaited<ReturnType<typeof moved>>>;
    // From its checkpoint, not from 0, at the same try; a migration, as the runtime moves any agent.
    expect(actor).toMatchObject({ logic: "counter", snapshot: { context: { count: 3 } }, attempt: 1, migrations: 1 });
    expect(step).toMatchObject({ status: "running", attempts: 1 });
    for (const type of ["INC", "INC", "DONE"]) expect((await event(taker, step.actor, type)).status).toBe(202);
    const result = await resultOf(taker, id);
    expect(result).toMatchObject({ status: "complete", steps_completed: 2, result: { report: { counted: 5 } } });
    expect((await taker.get(`/v1/workflows/${id}`)).json).toMatchObject({ owner: taker.name, steps: { count: { status: "complete", result: 5, attempts: 1 } } });
  });
});
