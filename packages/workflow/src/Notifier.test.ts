import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { MAX_QUEUED_NOTICES, Notifier, type WorkflowNotice } from "./Notifier.js";

const logged: unknown[] = [];
const logger = {
  child: () => logger,
  fatal: () => {},
  error: (o: unknown) => logged.push(["error", o]),
  warn: (o: unknown) => logged.push(["warn", o]),
  info: (o: unknown) => logged.push(["info", o]),
  debug: () => {},
  trace: () => {},
};
const notice = (event: WorkflowNotice["event"]): WorkflowNotice => ({ event, workflow_id: "wf_1", name: "n", at: new Date().toISOString() });

describe("Notifier", () => {
  it("retries a failing webhook until it accepts, keeps order, and logs every event", async () => {
    let calls = 0;
    const got: string[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        calls++;
        if (calls <= 2) return void res.writeHead(503).end();
        got.push(JSON.parse(body).event);
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const n = new Notifier({ url, on: ["workflow.started", "step.completed", "workflow.finished"] }, logger);
    n.notify(notice("workflow.started"));
    n.notify(notice("step.started")); // not asked for: logged only
    n.notify(notice("step.completed"));
    n.notify(notice("workflow.finished"));
    await n.flushed();
    server.close();
    expect(got).toEqual(["workflow.started", "step.completed", "workflow.finished"]);
    expect(calls).toBe(5);
    expect(logged.filter((l) => (l as [string])[0] === "info")).toHaveLength(4);
    expect(logged.filter((l) => (l as [string])[0] === "warn")).toHaveLength(2);
  });

  it("gives up after its tries without failing anything", async () => {
    const n = new Notifier({ url: "http://127.0.0.1:9/hook" }, logger, 2);
    n.notify(notice("workflow.finished"));
    await n.flushed();
    expect(logged.at(-1)).toEqual(["error", expect.objectContaining({ event: "workflow.finished", tries: 2 })]);
  });

  it("holds at most MAX_QUEUED_NOTICES events for a webhook that hangs, logging the rest, and never reads what it answers", async () => {
    const held: import("node:http").ServerResponse[] = [];
    let posted = 0;
    const server = createServer((req, res) => {
      posted++;
      req.resume();
      if (posted === 1) {
        // An endless answer to the first: it must not be read into memory.
        res.writeHead(200, { "content-type": "application/octet-stream" });
        const chunk = Buffer.alloc(64 * 1024);
        const pump = () => {
          while (!res.destroyed && res.write(chunk)) {}
          if (!res.destroyed) res.once("drain", pump);
        };
        pump();
        return;
      }
      held.push(res); // never answered
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const n = new Notifier({ url, on: ["step.completed"] }, logger, 1);
    logged.length = 0;
    for (let i = 0; i < MAX_QUEUED_NOTICES + 5; i++) n.notify(notice("step.completed"));
    await expect.poll(() => posted, { timeout: 5_000 }).toBe(2); // the endless answer was let go
    expect(logged.filter((l) => (l as [string, { dropped?: number }])[0] === "warn" && (l as [string, { dropped?: number }])[1].dropped === 1)).toHaveLength(1);
    // The webhook goes away: the queue drains, and events are queued again.
    server.closeAllConnections();
    server.close();
    await n.flushed();
    n.notify(notice("step.completed"));
    await n.flushed();
    expect(logged.filter((l) => (l as [string, { dropped?: number }])[1].dropped !== undefined)).toHaveLength(1);
    expect(logged.filter((l) => (l as [string])[0] === "error")).toHaveLength(MAX_QUEUED_NOTICES);
  });
});
