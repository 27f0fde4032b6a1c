import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type NodeProcess, stopAll, until } from "../support/shoalProcess.js";
import { quickSpec, resultOf, submit, workflowMesh } from "../support/workflowMesh.js";

const started: NodeProcess[] = [];
afterEach(async () => {
  await stopAll(started.splice(0));
});

/** One step that runs for `ms`, then one more. */
const slow = (name: string, ms: number) => ({
  name,
  steps: [
    { id: "long", tool: "sleep_tool", input: { ms } },
    { id: "after", tool: "sleep_tool", needs: ["long"], input: { ms: 10 } },
  ],
});

// RLIMIT_FSIZE on the node process (prlimit, no root needed for one's own children): a write
// that would make a file longer than that fails with EFBIG, as on a full disk, and raising it is
// the disk recovering. Node ignores the SIGXFSZ that comes with it.
const hasPrlimit = (() => {
  try {
    execFileSync("prlimit", ["--version"]);
    return true;
  } catch {
    return false;
  }
})();
const fileSizeLimit = (pid: number, bytes: number | "unlimited") => execFileSync("prlimit", ["--pid", String(pid), `--fsize=${bytes}:`]);

describe("faults at the edges of the workflow store (real nodes)", () => {
  it.skipIf(!hasPrlimit)("a disk that refuses writes: new workflows get 503 with Retry-After, a running one ends in memory, and all is stored once the disk takes writes again", async () => {
    const { nodes } = await workflowMesh([{ name: "full-a" }], started);
    const [a] = nodes as [NodeProcess];
    const before = await submit(a, quickSpec("before"));
    await resultOf(a, before);
    const running = await submit(a, slow("through-the-outage", 1_500));
    const db = join(a.dataDir, "workflows.db");
    fileSizeLimit(a.pid as number, statSync(`${db}-wal`).size);
    try {
      // The running workflow's first outcome is the write the disk refuses.
      const failed = (l: Record<string, unknown>) => String(l.msg).startsWith("the workflow store cannot be written");
      await until(() => a.logsMatching(failed).length > 0, 10_000, () => "the store never failed a write");
      const refused = await a.post("/v1/workflows", quickSpec("refused"));
      expect(refused.status).toBe(503);
      expect(refused.json.error).toMatchObject({ code: "SHOAL_ERR_STORE_UNAVAILABLE", message: expect.stringContaining("cannot be written") });
      const again = await a.request("POST", "/v1/workflows", quickSpec("refused-again"));
      expect(again.headers?.["retry-after"]).toBe("1");
      expect(await a.metric("shoal_store_writable")).toBe(0);
      expect(await a.metric("shoal_store_write_failures_total")).toBe(1);
      // It goes on in memory meanwhile.
      expect((await resultOf(a, running, 15_000)).status).toBe("complete");
      expect(a.logsMatching(failed)).toHaveLength(1);
    } finally {
      fileSizeLimit(a.pid as number, "unlimited");
    }
    await until(async () => (await a.post("/v1/workflows", quickSpec("after"))).status === 202, 5_000, () => "submissions were not accepted again");
    expect(a.logsMatching((l) => String(l.msg).startsWith("the workflow store can be written again"))).toHaveLength(1);
    expect(await a.metric("shoal_store_writable")).toBe(1);

    // What it did during the outage was written then: a SIGKILL loses none of it.
    await a.kill("SIGKILL");
    a.restart();
    await a.ready();
    await until(async () => (await a.get(`/v1/workflows/${running}/result`)).status === 200, 10_000, () => "the workflow that ended during the outage was not in the store");
    expect((await a.get(`/v1/workflows/${running}/result`)).json).toMatchObject({ status: "complete", steps_completed: 2 });
  });

  it("an unreadable workflows.db (garbage, cut short, a newer schema) is moved aside with one log line, kept as it was, and the node starts and serves", async () => {
    const { nodes } = await workflowMesh([{ name: "corrupt-a" }], started);
    const [a] = nodes as [NodeProcess];
    const db = join(a.dataDir, "workflows.db");
    // Enough workflows for the file to have pages to lose.
    for (let i = 0; i < 20; i++) await resultOf(a, await submit(a, quickSpec(`filler-${i}`)));
    const damage: [string, () => void, RegExp][] = [
      ["garbage", () => writeFileSync(db, Buffer.alloc(64 * 1024, "not a database. ")), /not a database/],
      ["cut short", () => truncateSync(db, Math.floor(statSync(db).size / 2)), /malformed|quick_check/],
      ["a newer schema", () => writeFileSync(db, Buffer.concat([readFileSync(db).subarray(0, 60), Buffer.from([0, 0, 0, 99]), readFileSync(db).subarray(64)])), /version 99/],
    ];
    for (const [what, damageIt, reason] of damage) {
      // Stopped cleanly, so the whole store is in workflows.db (no WAL beside it) before it is damaged.
      a.signal("SIGTERM");
      await a.exit();
      damageIt();
      const damaged = readFileSync(db);
      const logged = a.logs.length;
      a.restart();
      await a.ready();
      const moved = a.logs.slice(logged).filter((l) => String(l.msg).includes("could not be read as a workflow store"));
      expect(moved, what).toHaveLength(1);
      expect(moved[0]?.msg, what).toMatch(reason);
      const aside = moved[0]?.movedAside as string;
      expect(readdirSync(a.dataDir), what).toContain(aside.slice(a.dataDir.length + 1));
      expect(readFileSync(aside).equals(damaged), `${what}: kept as it was`).toBe(true);
      expect(await a.metric("shoal_store_moved_aside_total"), what).toBe(1);
      // It serves: a new workflow runs and is stored.
      expect((await resultOf(a, await submit(a, quickSpec(`after-${what}`)))).status).toBe("complete");
    }
    expect(readdirSync(a.dataDir).filter((f) => f.startsWith("workflows.db.corrupt-"))).toHaveLength(3);
  });
});
