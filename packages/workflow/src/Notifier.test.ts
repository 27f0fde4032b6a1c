import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { Notifier, type WorkflowNotice } from "./Notifier.js";

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
});
