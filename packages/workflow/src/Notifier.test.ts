import { createHmac, timingSafeEqual } from "node:crypto";
import { type IncomingHttpHeaders, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { EgressGuard } from "@shoal/tools";
import { describe, expect, it } from "vitest";
import { MAX_QUEUED_NOTICES, Notifier, type WorkflowNotice } from "./Notifier.js";

/** The test webhooks listen on this box's loopback, which the egress rules refuse by default. */
const local = { egress: new EgressGuard({ allow: ["loopback"] }) };

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
    const n = new Notifier({ url, on: ["workflow.started", "step.completed", "workflow.finished"] }, logger, local);
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
    const n = new Notifier({ url: "http://127.0.0.1:9/hook" }, logger, { ...local, tries: 2 });
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
    const n = new Notifier({ url, on: ["step.completed"] }, logger, { ...local, tries: 1 });
    logged.length = 0;
    for (let i = 0; i < MAX_QUEUED_NOTICES + 5; i++) n.notify(notice("step.completed"));
    await expect.poll(() => posted, { timeout: 15_000 }).toBe(2); // the endless answer was let go
    expect(logged.filter((l) => (l as [string, { dropped?: number }])[0] === "warn" && (l as [string, { dropped?: number }])[1].dropped === 1)).toHaveLength(1);
    // The webhook goes away: the queue drains, and events are queued again.
    server.closeAllConnections();
    server.close();
    await n.flushed();
    n.notify(notice("step.completed"));
    await n.flushed();
    expect(logged.filter((l) => (l as [string, { dropped?: number }])[1].dropped !== undefined)).toHaveLength(1);
    expect(logged.filter((l) => (l as [string])[0] === "error")).toHaveLength(MAX_QUEUED_NOTICES);
    // Waits on events only, but a loaded box (CI, 2 cores) can take longer than vitest's 5 s default.
  }, 20_000);

  it("gives each event an id, sent as Idempotency-Key and event_id, the same on each try; signs each try over the exact body", async () => {
    const got: { headers: IncomingHttpHeaders; body: string }[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        got.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        res.writeHead(got.length === 1 ? 500 : 200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const secret = "webhook sesame";
    const n = new Notifier({ url, on: ["step.completed"] }, logger, { ...local, secret });
    n.notify(notice("step.completed"));
    n.notify(notice("step.completed"));
    await n.flushed();
    server.close();
    expect(got).toHaveLength(3);
    const keys = got.map((g) => g.headers["idempotency-key"]);
    expect(keys[0]).toMatch(/^evt_[0-9a-f]{24}$/);
    expect(keys[1], "the retry of the first event").toBe(keys[0]);
    expect(keys[2], "the second event").not.toBe(keys[0]);
    for (const { headers, body } of got) {
      expect(JSON.parse(body)).toMatchObject({ event: "step.completed", workflow_id: "wf_1", event_id: headers["idempotency-key"] });
      expect(verify(secret, headers["shoal-signature"], body), String(headers["shoal-signature"])).toBe(true);
      expect(verify(secret, headers["shoal-signature"], body.replace("wf_1", "wf_2")), "another body").toBe(false);
      expect(verify("another secret", headers["shoal-signature"], body)).toBe(false);
      const t = Number(/t=(\d+)/.exec(String(headers["shoal-signature"]))?.[1]);
      expect(verify(secret, String(headers["shoal-signature"]).replace(`t=${t}`, `t=${t - 1}`), body), "another time").toBe(false);
    }
    expect(verify(secret, got[0]?.headers["shoal-signature"], got[0]?.body ?? "", Date.now() + 301_000), "a replay 5 minutes later").toBe(false);
    // Without a secret nothing is signed.
    const unsigned: IncomingHttpHeaders[] = [];
    const plain = createServer((req, res) => void req.resume().on("end", () => unsigned.push(req.headers) && res.end()));
    await new Promise<void>((r) => plain.listen(0, "127.0.0.1", r));
    const m = new Notifier({ url: `http://127.0.0.1:${(plain.address() as AddressInfo).port}/`, on: ["step.completed"] }, logger, local);
    m.notify(notice("step.completed"));
    await m.flushed();
    plain.close();
    expect(unsigned).toHaveLength(1);
    expect(unsigned[0]?.["shoal-signature"]).toBeUndefined();
    expect(unsigned[0]?.["idempotency-key"]).toMatch(/^evt_/);
  });

  it("never posts to loopback, link-local or metadata addresses under the default rules, and does not follow a redirect", async () => {
    let hits = 0;
    const box = createServer((req, res) => {
      hits++;
      req.resume();
      res.writeHead(302, { location: "http://169.254.169.254/latest/meta-data/" }).end();
    });
    await new Promise<void>((r) => box.listen(0, "127.0.0.1", r));
    const port = (box.address() as AddressInfo).port;
    const lookup = async () => [{ address: "127.0.0.1", family: 4 }];
    for (const url of [`http://127.0.0.1:${port}/hook`, `http://[::ffff:127.0.0.1]:${port}/`, `http://hooks.example:${port}/`, "http://169.254.169.254/", "http://metadata.google.internal/"]) {
      logged.length = 0;
      const n = new Notifier({ url }, logger, { egress: new EgressGuard({ lookup }) });
      n.notify(notice("workflow.finished"));
      await n.flushed();
      const errors = logged.filter((l) => (l as [string])[0] === "error");
      expect(errors, url).toEqual([["error", expect.objectContaining({ code: "SHOAL_ERR_EGRESS_DENIED", err: expect.stringMatching(/^webhook POST .*refused to connect to .*--egress-allow/) })]]);
      expect(logged.filter((l) => (l as [string])[0] === "warn"), `${url}: not tried again`).toEqual([]);
    }
    expect(hits).toBe(0);
    // Allowed, the webhook's redirect is an answer with an error status: the metadata address is never asked.
    logged.length = 0;
    const n = new Notifier({ url: `http://127.0.0.1:${port}/hook` }, logger, { ...local, tries: 2 });
    n.notify(notice("workflow.finished"));
    await n.flushed();
    box.close();
    expect(hits).toBe(2);
    expect(logged.filter((l) => (l as [string])[0] === "warn")).toEqual([
      ["warn", expect.objectContaining({ status: 302, attempt: 1 })],
      ["warn", expect.objectContaining({ status: 302, attempt: 2 })],
    ]);
  });
});

/** The receiver's check, line for line as in the README: a fresh time and an HMAC over `<t>.<body>` that matches. */
function verify(secret: string, header: string | string[] | undefined, body: string, now = Date.now()): boolean {
  const { t, v1 } = Object.fromEntries(String(header ?? "").split(",").map((kv) => kv.split("=")));
  const expected = createHmac("sha256", secret).update(`${t}.${body}`).digest("hex");
  const fresh = Math.abs(now / 1000 - Number(t)) < 300;
  if (!fresh || v1?.length !== expected.length || !timingSafeEqual(Buffer.from(v1), Buffer.from(expected))) return false;
  return true;
}
