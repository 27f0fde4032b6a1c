import type { LookupAddress } from "node:dns";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { silentLogger } from "@shoal/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { EgressGuard, type EgressSettings } from "./EgressGuard.js";
import { httpRequest, llmComplete } from "./builtins/index.js";
import type { ToolContext } from "./definitions.js";

const ctx: ToolContext = { node: "n1", actorId: "a~1", key: "wf_abc123/fetch", attempt: 1, migration: false, signal: new AbortController().signal, log: silentLogger };

interface Served {
  port: number;
  /** Requests it got, as `METHOD url`, with the headers of the last one. */
  hits: string[];
  last?: IncomingMessage;
}
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r).closeAllConnections())));
});

/** A real server on `host` (every 127/8 address is this box's loopback), on `port` or any free one. */
async function serve(host: string, handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, r) => void r.end("ok"), port = 0): Promise<Served> {
  const served: Served = { port: 0, hits: [] };
  const server = createServer((req, res) => {
    served.hits.push(`${req.method} ${req.url}`);
    served.last = req;
    req.resume();
    req.on("end", () => handler(req, res));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(port, host, r));
  served.port = (server.address() as AddressInfo).port;
  return served;
}

const get = (settings: EgressSettings | undefined, url: string, headers: Record<string, string> = {}) =>
  httpRequest(settings && { egress: new EgressGuard(settings) }).run({ url, method: "GET", headers, timeout_ms: 5_000 }, ctx);

/** Names of this test's own, answered without DNS. */
const names = (table: Record<string, string[] | (() => string[])>) => async (hostname: string): Promise<LookupAddress[]> => {
  const entry = table[hostname];
  if (!entry) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
  return (typeof entry === "function" ? entry() : entry).map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
};

const denied = (address: string, allowWith: RegExp) => ({
  code: "SHOAL_ERR_EGRESS_DENIED",
  message: expect.stringMatching(new RegExp(`^GET http.*: refused to connect to .*${address.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}.*; the node's egress rules let it through with ${allowWith.source}`)),
});

describe("http_request egress, default rules", () => {
  it("refuses loopback, unspecified, link-local and metadata addresses in every form, and the names for them, before any byte is sent", async () => {
    const box = await serve("127.0.0.1");
    const p = box.port;
    const lookups: string[] = [];
    const lookup = async (hostname: string) => {
      lookups.push(hostname);
      return names({ "camera-1.lan": ["127.0.0.1"] })(hostname);
    };
    const cases: [string, string, RegExp][] = [
      [`http://127.0.0.1:${p}/`, "127.0.0.1", /--egress-allow loopback \(or --egress-allow 127\.0\.0\.1\/32\)/],
      [`http://2130706433:${p}/`, "127.0.0.1", /--egress-allow loopback/],
      [`http://0x7f.1:${p}/`, "127.0.0.1", /--egress-allow loopback/],
      [`http://[::ffff:127.0.0.1]:${p}/`, "127.0.0.1", /--egress-allow loopback/],
      [`http://[::1]:${p}/`, "::1", /--egress-allow loopback \(or --egress-allow ::1\/128\)/],
      [`http://0.0.0.0:${p}/`, "0.0.0.0", /--egress-allow unspecified/],
      [`http://169.254.169.254/latest/meta-data/`, "169.254.169.254", /--egress-allow metadata,link-local/],
      [`http://[fe80::1]:${p}/`, "fe80::1", /--egress-allow link-local/],
      [`http://metadata.google.internal/computeMetadata/v1/`, "metadata.google.internal", /--egress-allow metadata$/],
      [`http://camera-1.lan:${p}/`, "camera-1.lan (127.0.0.1)", /--egress-allow loopback/],
    ];
    for (const [url, address, allowWith] of cases) {
      await expect(get({ lookup }, url), url).rejects.toMatchObject(denied(address, allowWith));
    }
    // Literals and the metadata names are never looked up; the name is, and its answer refused.
    expect(lookups).toEqual(["camera-1.lan"]);
    // Real DNS: localhost is this box whatever it resolves to.
    await expect(get(undefined, `http://localhost:${p}/`)).rejects.toMatchObject({ code: "SHOAL_ERR_EGRESS_DENIED", message: expect.stringMatching(/localhost \((127\.0\.0\.1|::1)\): a loopback address/) });
    expect(box.hits).toEqual([]);
  });

  it("a name with one refused address among allowed ones is refused whole", async () => {
    const lan = await serve("127.0.0.2");
    const lookup = names({ "mixed.test": ["127.0.0.2", "127.0.0.1"] });
    await expect(get({ allow: ["127.0.0.2/32"], lookup }, `http://mixed.test:${lan.port}/`)).rejects.toMatchObject({
      code: "SHOAL_ERR_EGRESS_DENIED",
      message: expect.stringMatching(/mixed\.test \(127\.0\.0\.1\): a loopback address/),
    });
    expect(lan.hits).toEqual([]);
  });

  it("connects to the address it checked: a name that changes its answer to a refused one (DNS rebinding) never reaches it", async () => {
    const allowed = await serve("127.0.0.2", (_req, res) => void res.writeHead(200, { connection: "close" }).end("public"));
    // The box's private service on the same port, at the address the name turns into.
    const secret = await serve("127.0.0.1", (_req, res) => void res.end("secret"), allowed.port);
    const answers = ["127.0.0.2", "127.0.0.1", "127.0.0.1"];
    let lookups = 0;
    const lookup = names({ "rebind.test": () => [answers[lookups++] ?? "127.0.0.1"] });
    const tool = httpRequest({ egress: new EgressGuard({ allow: ["127.0.0.2/32"], lookup }) });
    const call = () => tool.run({ url: `http://rebind.test:${allowed.port}/`, method: "GET", headers: {}, timeout_ms: 5_000 }, ctx);
    await expect(call()).resolves.toMatchObject({ status: 200, body: "public" });
    await expect(call()).rejects.toMatchObject({ code: "SHOAL_ERR_EGRESS_DENIED", message: expect.stringMatching(/rebind\.test \(127\.0\.0\.1\)/) });
    await expect(call()).rejects.toMatchObject({ code: "SHOAL_ERR_EGRESS_DENIED" });
    // One lookup per connection, and each connection went where its lookup said.
    expect(lookups).toBe(3);
    expect(allowed.hits).toEqual(["GET /"]);
    expect(secret.hits).toEqual([]);
  });

  it("checks every redirect hop: an allowed server that redirects to this box is refused at that hop", async () => {
    const box = await serve("127.0.0.1");
    const lookup = names({ "box.test": ["127.0.0.1"] });
    const hops: Record<string, [number, string]> = {
      "/to-loopback": [302, `http://127.0.0.1:${box.port}/admin`],
      "/to-name": [307, `http://box.test:${box.port}/admin`],
      "/to-mapped": [301, `http://[::ffff:7f00:1]:${box.port}/admin`],
      "/to-metadata": [308, "http://169.254.169.254/latest/meta-data/"],
      "/to-ftp": [302, "ftp://127.0.0.2/x"],
      "/loop": [302, "/loop"],
    };
    const lan = await serve("127.0.0.2", (req, res) => {
      const hop = hops[req.url ?? ""];
      if (hop) return void res.writeHead(hop[0], { location: hop[1] }).end();
      res.end("final");
    });
    const allowLan = { allow: ["127.0.0.2/32"], lookup };
    const at = `http://127.0.0.2:${lan.port}`;
    await expect(get(allowLan, `${at}/to-loopback`)).rejects.toMatchObject(denied("127.0.0.1", /--egress-allow loopback/));
    await expect(get(allowLan, `${at}/to-name`)).rejects.toMatchObject(denied("box.test (127.0.0.1)", /--egress-allow loopback/));
    await expect(get(allowLan, `${at}/to-mapped`)).rejects.toMatchObject(denied("127.0.0.1", /--egress-allow loopback/));
    await expect(get(allowLan, `${at}/to-metadata`)).rejects.toMatchObject(denied("169.254.169.254", /--egress-allow metadata,link-local/));
    await expect(get(allowLan, `${at}/to-ftp`)).rejects.toMatchObject({ code: "SHOAL_ERR_HTTP_FAILED", message: /redirected to ftp:\/\/127\.0\.0\.2\/x, which is not http\(s\)/ });
    await expect(get(allowLan, `${at}/loop`)).rejects.toMatchObject({ code: "SHOAL_ERR_HTTP_FAILED", message: /more than 5 redirects/ });
    expect(box.hits).toEqual([]);
    expect(lan.hits.filter((h) => h === "GET /loop")).toHaveLength(6);
  });

  it("a deny rule refuses what allow lets through, and the LAN can be denied", async () => {
    await expect(get({ allow: ["loopback"], deny: ["127.0.0.0/8"] }, "http://127.0.0.1:9/")).rejects.toMatchObject({
      code: "SHOAL_ERR_EGRESS_DENIED",
      message: expect.stringMatching(/127\.0\.0\.1: in --egress-deny 127\.0\.0\.0\/8; .* with --egress-deny without 127\.0\.0\.0\/8$/),
    });
    const lookup = names({ "camera-1.lan": ["192.168.1.20"] });
    await expect(get({ deny: ["private"], lookup }, "http://camera-1.lan/frame.jpg")).rejects.toMatchObject({ code: "SHOAL_ERR_EGRESS_DENIED", message: /in --egress-deny private/ });
  });
});

describe("http_request egress, allowed", () => {
  it("reaches this box with egress-allow loopback, follows redirects (a 303 turns a POST into a GET), and sends the step key as Idempotency-Key", async () => {
    const box = await serve("127.0.0.1", (req, res) => {
      if (req.url === "/submit") return void res.writeHead(303, { location: "/done" }).end();
      if (req.url === "/keep") return void res.writeHead(307, { location: "/kept" }).end();
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ method: req.method, key: req.headers["idempotency-key"], type: req.headers["content-type"] ?? null }));
    });
    const tool = httpRequest({ egress: new EgressGuard({ allow: ["loopback"] }) });
    const url = `http://127.0.0.1:${box.port}`;
    const post = (path: string, headers: Record<string, string> = {}) => tool.run({ url: `${url}${path}`, method: "POST", headers, body: { a: 1 }, timeout_ms: 5_000 }, ctx);
    await expect(post("/submit")).resolves.toMatchObject({ status: 200, body: { method: "GET", key: "wf_abc123/fetch", type: null } });
    await expect(post("/keep")).resolves.toMatchObject({ body: { method: "POST", key: "wf_abc123/fetch", type: "application/json" } });
    await expect(post("/x", { "Idempotency-Key": "mine" })).resolves.toMatchObject({ body: { key: "mine" } });
    expect(box.hits).toEqual(["POST /submit", "GET /done", "POST /keep", "POST /kept", "POST /x"]);
    // The same key on every retry and migration: it is the step's, not the attempt's.
    await tool.run({ url: `${url}/again`, method: "GET", headers: {}, timeout_ms: 5_000 }, { ...ctx, attempt: 2, migration: true });
    expect(box.last?.headers["idempotency-key"]).toBe("wf_abc123/fetch");
  });

  it("does not carry credentials to another origin on a redirect", async () => {
    const other = await serve("127.0.0.1");
    const first = await serve("127.0.0.1", (_req, res) => void res.writeHead(302, { location: `http://other.test:${other.port}/next` }).end());
    await get({ allow: ["loopback"], lookup: names({ "other.test": ["127.0.0.1"] }) }, `http://127.0.0.1:${first.port}/`, { authorization: "Bearer s3cret", cookie: "a=b", "x-trace": "t" });
    expect(first.last?.headers.authorization).toBe("Bearer s3cret");
    expect(other.hits).toEqual(["GET /next"]);
    expect(other.last?.headers).toMatchObject({ "x-trace": "t", "idempotency-key": "wf_abc123/fetch" });
    expect(other.last?.headers.authorization).toBeUndefined();
    expect(other.last?.headers.cookie).toBeUndefined();
  });
});

describe("llm_complete egress", () => {
  it("reaches the endpoint the node was configured with on this box, and checks a redirect away from it", async () => {
    const completion = JSON.stringify({ model: "m", choices: [{ message: { content: "hi" }, finish_reason: "stop" }] });
    const box = await serve("127.0.0.1", (req, res) => {
      if (req.url === "/moved/chat/completions") return void res.writeHead(307, { location: "http://169.254.169.254/latest/" }).end();
      res.writeHead(200, { "content-type": "application/json" }).end(completion);
    });
    const egress = new EgressGuard();
    await expect(llmComplete({ url: `http://127.0.0.1:${box.port}/v1` }, { egress }).run({ prompt: "x", timeout_ms: 5_000 }, ctx)).resolves.toMatchObject({ text: "hi" });
    await expect(llmComplete({ url: `http://127.0.0.1:${box.port}/moved` }, { egress }).run({ prompt: "x", timeout_ms: 5_000 }, ctx)).rejects.toMatchObject({
      code: "SHOAL_ERR_EGRESS_DENIED",
      message: expect.stringMatching(/^llm_complete: refused to connect to 169\.254\.169\.254: a cloud metadata address/),
    });
    // Trusting the endpoint did not open this box to http_request through the same rules.
    await expect(httpRequest({ egress }).run({ url: `http://127.0.0.1:${box.port}/v1`, method: "GET", headers: {}, timeout_ms: 5_000 }, ctx)).rejects.toMatchObject({ code: "SHOAL_ERR_EGRESS_DENIED" });
    expect(box.hits).toEqual(["POST /v1/chat/completions", "POST /moved/chat/completions"]);
  });
});

