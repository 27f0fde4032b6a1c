import { readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { type SecureCluster, secureCluster } from "../support/secureCluster.js";
import { type ApiAnswer, NodeProcess, apiCall, freePort, runCliAsync, stopAll, tempDir, until } from "../support/shoalProcess.js";

/**
 * The attacks of issue 11 against real nodes: a secured mesh (mutual TLS, API tokens) refuses
 * callers without the right token and peers without the cluster's certificate; an open node on
 * loopback refuses what a hostile web page can send it (a cross-site post, DNS rebinding, a
 * cross-origin WebSocket). Each refusal has its code, and the node keeps working after it.
 */

const PLUGIN = resolve(import.meta.dirname, "../fixtures/plugins/actors.mjs");
const SLEEP_SPEC = { name: "probe", steps: [{ id: "s", tool: "sleep_tool", input: { ms: 1 } }] };

function expectRefusal(answer: ApiAnswer, status: number, code: string) {
  expect({ status: answer.status, code: answer.json?.error?.code }).toEqual({ status, code });
  expect(answer.json.error.message.length).toBeGreaterThan(10);
}

describe("a secured mesh: mutual TLS and API tokens", () => {
  let keys: SecureCluster;
  let nodes: NodeProcess[];
  let submit: string;
  const extra: NodeProcess[] = [];

  beforeAll(async () => {
    keys = secureCluster();
    submit = keys.token("submit").token;
    nodes = [];
    for (const name of ["sec-a", "sec-b", "sec-c"]) {
      const seed = nodes[0];
      const n = new NodeProcess({
        name,
        port: await freePort(),
        join: seed ? [seed.address] : [],
        extra: [...keys.nodeFlags(name), "--plugin", PLUGIN],
        client: { ca: keys.ca, token: keys.token("read").token },
      }).start();
      nodes.push(n);
    }
    await Promise.all(nodes.map((n) => n.ready()));
    await until(async () => (await Promise.all(nodes.map(async (n) => (await n.nodes()).filter((r) => r.status === "up").length))).every((c) => c === 3), 20_000, () => "the secured mesh to form");
  }, 60_000);
  afterAll(async () => stopAll(nodes));
  afterEach(async () => stopAll(extra.splice(0)));

  const [a] = [() => nodes[0] as NodeProcess];
  const call = (method: string, path: string, token: string | undefined, body?: unknown) => apiCall(a().address, method, path, { ca: keys.ca, token, body });

  it("runs a workflow across the mesh with `shoal run --ca --token-file`", async () => {
    const tokenFile = join(tempDir(), "token");
    writeFileSync(tokenFile, submit, { mode: 0o600 });
    const spec = join(tempDir(), "spec.json");
    writeFileSync(spec, JSON.stringify({ name: "fanout", steps: ["x", "y", "z"].map((id) => ({ id, tool: "sleep_tool", input: { ms: 20 } })) }));
    const run = await runCliAsync(["run", spec, "--node", a().address, "--ca", keys.caFile, "--token-file", tokenFile, "--json"]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ status: "complete", steps_completed: 3 });
    // Without the CA the CLI cannot speak to the node, and says so.
    const plain = await runCliAsync(["nodes", "--node", a().address, "--token-file", tokenFile]);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/SHOAL_ERR_UNREACHABLE/);
  });

  it("401 without a token, with a forged, expired or revoked one; 403 for the wrong scope; /healthz open", async () => {
    expect((await call("GET", "/healthz", undefined)).status).toBe(200);
    expectRefusal(await call("GET", "/v1/nodes", undefined), 401, "SHOAL_ERR_UNAUTHORIZED");
    const other = secureCluster().token("admin").token;
    expectRefusal(await call("GET", "/v1/nodes", other), 401, "SHOAL_ERR_UNAUTHORIZED");
    const read = keys.token("read").token;
    expect((await call("GET", "/v1/nodes", read)).status).toBe(200);
    expectRefusal(await call("POST", "/v1/workflows", read, SLEEP_SPEC), 403, "SHOAL_ERR_FORBIDDEN");
    expect((await call("POST", "/v1/workflows", submit, SLEEP_SPEC)).status).toBe(202);
    const shortLived = keys.token("read", "1s").token;
    await until(async () => (await call("GET", "/v1/nodes", shortLived)).status === 401, 5_000, () => "the 1 s token to expire");
    expect((await call("GET", "/v1/nodes", shortLived)).json.error.message).toMatch(/expired/);
    // Revoked by id in the file every node reads; no restart.
    const doomed = keys.token("submit");
    expect((await call("GET", "/v1/nodes", doomed.token)).status).toBe(200);
    const revoked = join(tempDir(), "revoked");
    writeFileSync(revoked, `${doomed.id}\n`);
    const r = new NodeProcess({ name: "sec-r", port: await freePort(), extra: [...keys.nodeFlags("sec-r"), "--revoked-tokens", revoked], client: { ca: keys.ca } }).start();
    extra.push(r);
    await r.ready();
    const onR = (token: string) => apiCall(r.address, "GET", "/v1/nodes", { ca: keys.ca, token });
    expect((await onR(doomed.token)).json.error.message).toMatch(/revoked/);
    const later = keys.token("read");
    expect((await onR(later.token)).status).toBe(200);
    writeFileSync(revoked, `${doomed.id}\n${later.id}\n`);
    await until(async () => (await onR(later.token)).status === 401, 5_000, () => "the revocation to be read");
    expect((await call("GET", "/v1/nodes", submit)).status).toBe(200);
  });

  it("a token in a URL is refused, on routes and on the inspection stream", async () => {
    expectRefusal(await call("GET", `/v1/nodes?token=${submit}`, undefined), 400, "SHOAL_ERR_TOKEN_IN_URL");
    expectRefusal(await call("GET", `/v1/workflows/${submit}`, submit), 400, "SHOAL_ERR_TOKEN_IN_URL");
    const status = await new Promise<number>((res) => {
      const ws = new WebSocket(`wss://${a().address}/v1/inspect?token=${submit}`, { ca: keys.ca });
      ws.on("unexpected-response", (_req, r) => res(r.statusCode ?? 0));
      ws.on("open", () => res(101));
      ws.on("error", () => {});
    });
    expect(status).toBe(400);
  });

  it("speaks only TLS: plain http on the port gets no API answer", async () => {
    const answer = await apiCall(a().address, "GET", "/v1/nodes", { token: submit }).catch((err: Error) => err);
    expect(answer instanceof Error ? "refused" : answer.status).not.toBe(200);
  });

  it("refuses a peer whose certificate another CA signed, one without a certificate, and a node whose certificate is for another name", async () => {
    const rogueDir = secureCluster().tlsDir("sec-rogue");
    const dial = (cert?: { cert: string; key: string }) =>
      new Promise<string>((res) => {
        const ws = new WebSocket(`wss://${a().address}/mesh`, { ca: keys.ca, ...cert });
        ws.on("unexpected-response", (_req, r) => {
          let body = "";
          r.on("data", (d) => (body += d));
          r.on("end", () => res(`${r.statusCode} ${JSON.parse(body).error.code}`));
        });
        ws.on("open", () => res("open"));
        ws.on("error", (err) => res(err.message));
      });
    const rogueCert = { cert: readFileSync(join(rogueDir, "node.crt"), "utf8"), key: readFileSync(join(rogueDir, "node.key"), "utf8") };
    expect(await dial(rogueCert)).toBe("401 SHOAL_ERR_PEER_CERT_REQUIRED");
    expect(await dial()).toBe("401 SHOAL_ERR_PEER_CERT_REQUIRED");
    // A whole node of another cluster CA cannot join either way round.
    const rogue = new NodeProcess({ name: "sec-rogue", port: await freePort(), join: [a().address], extra: ["--tls-dir", rogueDir, "--token-key-file", keys.tokenKeyFile] }).start();
    extra.push(rogue);
    await until(() => rogue.logsMatching((l) => l.msg === "node started").length > 0, 10_000, () => "the rogue node to start");
    // The rogue does not trust the cluster's certificate either: its TLS handshake fails.
    await until(() => rogue.logsMatching((l) => l.level === 40 && l.cause === "SELF_SIGNED_CERT_IN_CHAIN").length > 0, 10_000, () => "the rogue to warn that its dial failed on the certificate");
    expect((await a().nodes()).map((n) => n.name).sort()).toEqual(["sec-a", "sec-b", "sec-c"]);
    // A node given another node's certificate does not start.
    const impostor = new NodeProcess({ name: "sec-d", port: await freePort(), extra: ["--tls-dir", keys.tlsDir("sec-b"), "--token-key-file", keys.tokenKeyFile] }).start();
    expect(await impostor.exit()).toBe(1);
    expect(impostor.stderr).toMatch(/SHOAL_ERR_BAD_TLS: .*node.crt is for sec-b, this node is --name sec-d/);
    expect((await call("POST", "/v1/workflows?wait=1", submit, SLEEP_SPEC)).json.status).toBe("complete");
  });
});

describe("an open node on loopback against a hostile web page", () => {
  let n: NodeProcess;
  let seen: string[];
  let target: import("node:http").Server;

  beforeAll(async () => {
    // The box's private service that the page wants to read through the node.
    const { createServer } = await import("node:http");
    seen = [];
    target = createServer((req, res) => {
      seen.push(req.url ?? "");
      res.end("secret admin page");
    });
    await new Promise<void>((r) => target.listen(0, "127.0.0.1", r));
    n = new NodeProcess({ name: "web-a", port: await freePort() }).start();
    await n.ready();
  });
  afterAll(async () => {
    await stopAll([n]);
    target.close();
  });

  const ssrf = () => ({
    name: "ssrf",
    steps: [{ id: "s", tool: "http_request", input: { url: `http://127.0.0.1:${(target.address() as { port: number }).port}/admin` } }],
  });
  const workflowsRun = async () => (await n.get("/v1/workflows")).json.workflows.length as number;

  it("a cross-site form post is refused: other origin 403, a form's content type 415, and nothing runs", async () => {
    const before = await workflowsRun();
    const body = JSON.stringify(ssrf());
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      expectRefusal(await n.request("POST", "/v1/workflows?wait=1", body, { "content-type": type, origin: "http://attacker.example" }), 403, "SHOAL_ERR_BAD_ORIGIN");
      expectRefusal(await apiCall(n.address, "POST", "/v1/workflows?wait=1", { body, headers: { "content-type": type } }), 415, "SHOAL_ERR_UNSUPPORTED_MEDIA_TYPE");
    }
    expectRefusal(await n.request("POST", "/v1/workflows?wait=1", ssrf(), { origin: "null" }), 403, "SHOAL_ERR_BAD_ORIGIN");
    expect(await workflowsRun()).toBe(before);
    expect(seen).toEqual([]);
  });

  it("a DNS-rebinding request (the attacker's name in Host) is refused with 421, and nothing runs", async () => {
    expectRefusal(await n.request("POST", "/v1/workflows?wait=1", ssrf(), { host: `rebind.attacker.example:${n.port}` }), 421, "SHOAL_ERR_BAD_HOST");
    expectRefusal(await n.request("GET", "/v1/nodes", undefined, { host: "rebind.attacker.example" }), 421, "SHOAL_ERR_BAD_HOST");
    expect(seen).toEqual([]);
    // The node's own names still work.
    expect((await n.request("GET", "/v1/nodes", undefined, { host: `localhost:${n.port}` })).status).toBe(200);
    expect((await n.request("GET", "/v1/nodes", undefined, { host: `web-a:${n.port}` })).status).toBe(200);
  });

  it("a cross-origin WebSocket is refused on /v1/inspect and on /mesh", async () => {
    const upgrade = (path: string, headers: Record<string, string>) =>
      new Promise<string>((res) => {
        const socket = connect(n.port, "127.0.0.1", () => {
          const lines = Object.entries({ host: n.address, upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13", ...headers });
          socket.write(`GET ${path} HTTP/1.1\r\n${lines.map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n`);
        });
        let text = "";
        socket.on("data", (d) => {
          text += d;
          if (text.includes("\r\n\r\n")) {
            res(text);
            socket.destroy();
          }
        });
        socket.on("error", () => res(text));
      });
    expect(await upgrade("/v1/inspect", { origin: "http://attacker.example" })).toMatch(/^HTTP\/1.1 403[\s\S]*SHOAL_ERR_BAD_ORIGIN/);
    expect(await upgrade("/mesh", { origin: `http://${n.address}` })).toMatch(/^HTTP\/1.1 403[\s\S]*SHOAL_ERR_BAD_ORIGIN/);
    expect(await upgrade("/v1/inspect", { host: "rebind.attacker.example" })).toMatch(/^HTTP\/1.1 421/);
    expect(await upgrade("/v1/inspect", { origin: `http://${n.address}` })).toMatch(/^HTTP\/1.1 101/);
    expect((await n.get("/healthz")).json.ok).toBe(true);
  });

  it("serves devtools with a strict Content-Security-Policy", async () => {
    const page = await n.get("/devtools");
    expect(page.headers["content-security-policy"]).toMatch(/default-src 'none'; script-src 'self'/);
    expect(page.headers["x-content-type-options"]).toBe("nosniff");
  });
});
