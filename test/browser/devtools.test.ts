import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACTS, launchBrowser } from "../support/browser.js";
import { type SecureCluster, secureCluster } from "../support/secureCluster.js";
import { type NodeProcess, startMesh, stopAll, tempDir, until } from "../support/shoalProcess.js";

const PLUGIN = resolve(import.meta.dirname, "../fixtures/plugins/actors.mjs");
const FAST = ["--heartbeat-ms", "100", "--suspect-after-ms", "300", "--down-after-ms", "600"];
let nodes: NodeProcess[] = [];
let browser: Browser;
let page: Page;
/** What the page's Content-Security-Policy blocked, as the browser reports it. */
const violations: string[] = [];

/**
 * Reports every CSP violation of the pages in `target` to `into`, from the page's own
 * `securitypolicyviolation` event and from chromium's console line ("Refused to ..."). The
 * listener is an init script, which the page's CSP does not govern.
 */
async function watchCsp(target: Page | BrowserContext, into: string[]): Promise<void> {
  await target.addInitScript(
    `document.addEventListener("securitypolicyviolation", (e) => console.error("csp violation: " + e.violatedDirective + " " + e.blockedURI));`,
  );
  const onPage = (p: Page) => {
    p.on("console", (m) => {
      if (m.type() === "error" && /csp violation|Content Security Policy/i.test(m.text())) into.push(m.text());
    });
    p.on("pageerror", (err) => into.push(`page error: ${err.message}`));
  };
  if ("goto" in target) onPage(target);
  else target.on("page", onPage);
}

beforeAll(async () => {
  const dir = tempDir("devtools-");
  for (const [name, slots] of [["ui-a", 0], ["ui-b", 2], ["ui-c", 2]] as const) {
    const m = await startMesh([name], {
      extra: ["--plugin", PLUGIN, "--slots", String(slots), ...FAST, ...(nodes[0] ? ["--join", nodes[0].address] : [])],
      env: { SHOAL_TEST_DIR: dir },
    });
    nodes.push(...m.nodes);
  }
  for (const n of nodes) await until(async () => (await n.nodes()).filter((r) => r.status === "up").length === 3, 10_000);
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await watchCsp(page, violations);
});
afterAll(async () => {
  await browser?.close();
  await stopAll(nodes);
  nodes = [];
});

const a = () => nodes[0] as NodeProcess;
const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

describe("devtools in a real browser against a real 3-node mesh", () => {
  it("shows a crafted id from a link as text: the XSS link runs no script", async () => {
    const payload = `<img src=x onerror="window.__pwned=1">`;
    await page.goto(`http://${a().address}/devtools#/workflows/${encodeURIComponent(payload)}`);
    await page.waitForSelector("p.error");
    expect(await page.textContent("p.error")).toContain(payload);
    expect(await page.locator("#app img").count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  it("shows the mesh: 3 nodes up, with capabilities, tools and slots", async () => {
    await page.goto(`http://${a().address}/devtools#/mesh`);
    await page.waitForSelector('.node-card[data-status="up"]:nth-child(3)');
    expect(await page.locator('.node-card[data-status="up"]').count()).toBe(3);
    expect(await page.textContent('.node-card[data-node="ui-b"]')).toContain("slots 0/2");
    expect(await page.textContent('.node-card[data-node="ui-b"]')).toContain("sleep_tool");
    expect(await page.textContent("#conn")).toContain("live via ui-a");
    await shot("01-mesh");
  });

  it("runs a workflow and shows its steps turn complete in the graph", async () => {
    const r = await a().post("/v1/workflows", {
      name: "ui-shape",
      steps: [
        { id: "left", tool: "sleep_tool", input: { ms: 400 } },
        { id: "right", tool: "sleep_tool", input: { ms: 400 } },
        { id: "join", tool: "sleep_tool", needs: ["left", "right"], input: { ms: 300 } },
      ],
    });
    const id = r.json.workflow_id as string;
    await page.goto(`http://${a().address}/devtools#/workflows/${id}`);
    await page.waitForSelector('g.step[data-step="left"][data-status="running"]', { timeout: 5_000 });
    await shot("02-workflow-running");
    await page.waitForSelector('g.step[data-step="join"][data-status="complete"]', { timeout: 10_000 });
    expect(await page.locator('g.step[data-status="complete"]').count()).toBe(3);
    expect(await page.textContent("#wf-status")).toBe("complete");
    expect(await page.locator("path.edge").count()).toBe(2);
    await page.click('g.step[data-step="join"]');
    expect(await page.textContent("#step-panel")).toMatch(/placement.*least loaded/s);
    // The timeline steps back to a recorded state where `join` had not run yet.
    await page.click("#tl-prev");
    await page.fill("#tl-slider", "0");
    await page.dispatchEvent("#tl-slider", "input");
    expect(await page.getAttribute('g.step[data-step="join"]', "data-status")).not.toBe("complete");
    await shot("03-workflow-complete-timeline");
    await page.goto(`http://${a().address}/devtools#/workflows`);
    await page.waitForSelector(`.wf-row[data-workflow="${id}"]`);
  });

  it("marks a killed node down and shows its step move to another node", async () => {
    const r = await a().post("/v1/workflows", { name: "ui-move", steps: [{ id: "work", tool: "sleep_tool", input: { ms: 2_500 }, retries: 0 }] });
    const id = r.json.workflow_id as string;
    await page.goto(`http://${a().address}/devtools#/workflows/${id}`);
    await page.waitForSelector('g.step[data-step="work"][data-status="running"]');
    const first = (await page.getAttribute('g.step[data-step="work"]', "data-node")) as string;
    expect(first).toMatch(/^ui-[bc]$/);
    await nodes.find((n) => n.name === first)?.kill("SIGKILL");
    const other = first === "ui-b" ? "ui-c" : "ui-b";
    await page.waitForSelector(`g.step[data-step="work"][data-node="${other}"]`, { timeout: 10_000 });
    await shot("04-step-moved");
    await page.waitForSelector('g.step[data-step="work"][data-status="complete"]', { timeout: 10_000 });
    await page.goto(`http://${a().address}/devtools#/mesh`);
    await page.waitForSelector(`.node-card[data-node="${first}"][data-status="down"]`, { timeout: 5_000 });
    await shot("05-mesh-node-down");
  });

  it("opens an actor and shows its state chart follow its state, with a live event log", async () => {
    const spawned = await a().post("/v1/actors", { logic: "counter" });
    const id = spawned.json.id as string;
    await page.goto(`http://${a().address}/devtools#/actors/${id}`);
    await page.waitForSelector('.state.active[data-state-id="counter.counting"]');
    for (let i = 0; i < 3; i++) await a().post(`/v1/actors/${id}/events`, { event: { type: "INC" } });
    // Waits poll from here: a string predicate would be eval'd in the page, which its CSP refuses.
    await until(async () => (await page.textContent("#event-log"))?.split("INC").length === 4, 5_000, () => "three INC in the event log");
    await until(async () => (await page.textContent("pre"))?.includes('"count": 3') ?? false, 5_000);
    await shot("06-actor-counting");
    await a().post(`/v1/actors/${id}/events`, { event: { type: "DONE" } });
    await page.waitForSelector('.state.active[data-state-id="counter.finished"]', { timeout: 5_000 });
    expect(await page.locator(".state.active").count()).toBe(2); // the machine and its final state
    await shot("07-actor-finished");
  });

  it("follows an actor to its new node when its node drops, state intact", async () => {
    // Bring the node killed earlier back, so there are two hosts again.
    for (const n of nodes.slice(1)) {
      if ((await a().statusOf(n.name)) !== "up") await n.restart().ready();
    }
    await until(async () => (await a().nodes()).filter((r) => r.status === "up").length === 3, 10_000);
    const id = (await a().post("/v1/actors", { logic: "counter" })).json.id as string;
    for (let i = 0; i < 2; i++) await a().post(`/v1/actors/${id}/ask`, { event: { type: "INC" } });
    await page.goto(`http://${a().address}/devtools#/actors/${id}`);
    await page.waitForSelector('.state.active[data-state-id="counter.counting"]');
    const first = (await page.textContent("#actor-host")) as string;
    expect(first).toMatch(/^ui-[bc]$/);
    await nodes.find((n) => n.name === first)?.kill("SIGKILL");
    const other = first === "ui-b" ? "ui-c" : "ui-b";
    await until(async () => (await page.textContent("#actor-host")) === other, 10_000, () => `actor shown on ${other}`);
    await a().post(`/v1/actors/${id}/events`, { event: { type: "INC" } });
    await until(async () => (await page.textContent("pre"))?.includes('"count": 3') ?? false, 5_000);
    expect(await page.textContent("main")).toContain(`moved: ${first}`);
    await shot("08-actor-moved");
  });

  it("draws every view above under the strict Content-Security-Policy without a violation", async () => {
    await page.goto("about:blank");
    const res = await page.goto(`http://${a().address}/devtools#/workflows`);
    expect(res?.headers()["content-security-policy"]).toContain("script-src 'self'");
    await page.waitForSelector(".wf-row");
    expect(violations).toEqual([]);
    // The watch sees a violation when there is one: markup with a style attribute is refused.
    await page.evaluate(`document.querySelector("#app").insertAdjacentHTML("beforeend", '<i style="color:red">x</i>')`);
    await until(() => violations.length > 0, 5_000, () => "no violation reported for a style attribute");
    expect(violations.join("\n")).toMatch(/style-src/);
    violations.length = 0;
  });
});

describe("devtools on a secured mesh (https, wss, API tokens): the token asked once, never in a URL", () => {
  let cluster: SecureCluster;
  let secured: NodeProcess[] = [];
  let context: BrowserContext;
  let tab: Page;
  const urls: string[] = [];
  const authorization: string[] = [];
  const sent: string[] = [];
  let received = 0;
  const refusedCsp: string[] = [];
  const consoleErrors: string[] = [];
  let revokedFile: string;
  const sa = () => secured[0] as NodeProcess;

  beforeAll(async () => {
    cluster = secureCluster();
    const client = { ca: cluster.ca, token: cluster.token("admin").token };
    const dir = tempDir("devtools-secured-");
    revokedFile = join(dir, "revoked");
    writeFileSync(revokedFile, "");
    for (const name of ["sec-a", "sec-b"]) {
      const m = await startMesh([name], {
        extra: [
          ...["--plugin", PLUGIN, "--slots", "2", ...FAST, ...cluster.nodeFlags(name)],
          ...(secured[0] ? ["--join", secured[0].address] : ["--revoked-tokens", revokedFile]),
        ],
        env: { SHOAL_TEST_DIR: dir },
        client,
      });
      secured.push(...m.nodes);
    }
    for (const n of secured) await until(async () => (await n.nodes()).filter((r) => r.status === "up").length === 2, 10_000);
    // The browser is not given the cluster CA: it trusts the node's certificate as a user who clicked through would.
    context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 900 } });
    await watchCsp(context, refusedCsp);
    context.on("request", (r) => {
      urls.push(r.url());
      void r.allHeaders().then((h) => {
        if (h.authorization) authorization.push(`${new URL(r.url()).pathname} ${h.authorization}`);
      });
    });
    tab = await context.newPage();
    tab.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    tab.on("websocket", (ws) => {
      urls.push(ws.url());
      ws.on("framesent", (f) => sent.push(String(f.payload)));
      ws.on("framereceived", () => received++);
    });
  });
  afterAll(async () => {
    await context?.close();
    await stopAll(secured);
    secured = [];
  });

  it("asks for a token with a form, uses the one entered for every call and the wss stream, and fills the mesh", async () => {
    const res = await tab.goto(`https://${sa().address}/devtools#/mesh`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()["content-security-policy"]).toContain("default-src 'none'");
    await tab.waitForSelector("#token-form");
    expect(await tab.getAttribute("#token-input", "type")).toBe("password");
    expect(await tab.locator(".node-card").count()).toBe(0);
    await shot2("09-token-form");

    // A wrong token is refused by the node, and the form asks again with the node's reason.
    const noToken = (await tab.textContent("#token-reason")) as string;
    expect(noToken).not.toBe("");
    await tab.fill("#token-input", "not-a-token");
    await tab.click("#token-connect");
    await until(async () => (await tab.isVisible("#token-form")) && (await tab.textContent("#token-reason")) !== noToken, 5_000, () => "the form asking again");

    const read = cluster.token("read").token;
    await tab.fill("#token-input", read);
    await tab.click("#token-connect");
    await tab.waitForSelector('.node-card[data-status="up"]:nth-child(2)');
    expect(await tab.isVisible("#token-form")).toBe(false);
    expect(await tab.isVisible("#forget-token")).toBe(true);
    await until(async () => (await tab.textContent("#conn"))?.includes("live via sec-a") ?? false, 5_000);
    expect(urls.some((u) => u.startsWith(`wss://${sa().address}/v1/inspect`))).toBe(true);
    // The socket's first message is the token; the node then streams (a node without tokens ignores it).
    expect(JSON.parse(sent[0] as string)).toEqual({ type: "auth", token: read });
    expect(authorization).toContain(`/v1/nodes Bearer ${read}`);
    await shot2("10-secured-mesh");
  });

  it("follows a workflow live over wss with the token kept, and asks nothing on a reload", async () => {
    await tab.reload();
    await tab.waitForSelector('.node-card[data-status="up"]:nth-child(2)');
    expect(await tab.isVisible("#token-form")).toBe(false);
    const r = await sa().post("/v1/workflows", { name: "ui-secured", steps: [{ id: "only", tool: "sleep_tool", input: { ms: 600 } }] });
    expect(r.status).toBe(202);
    const id = r.json.workflow_id as string;
    const before = received;
    await tab.goto(`https://${sa().address}/devtools#/workflows/${id}`);
    // Completion reaches the page only as an inspection event: the stream is authorised.
    await tab.waitForSelector('g.step[data-step="only"][data-status="complete"]', { timeout: 10_000 });
    expect(received).toBeGreaterThan(before);
    await tab.goto(`https://${sa().address}/devtools#/workflows`);
    await tab.waitForSelector(`.wf-row[data-workflow="${id}"]`);
  });

  it("forgets the token on request and asks again", async () => {
    await tab.click("#forget-token");
    await tab.waitForSelector("#token-form");
    expect(await tab.evaluate(`localStorage.getItem("shoal.token")`)).toBeNull();
    expect(await tab.locator(".node-card").count()).toBe(0);
  });

  it("asks again when the node closes the stream for a revoked token, and goes live with the new one", async () => {
    const doomed = cluster.token("read");
    await tab.fill("#token-input", doomed.token);
    await tab.click("#token-connect");
    await until(async () => (await tab.textContent("#conn"))?.includes("live via sec-a") ?? false, 5_000, () => "the stream to open");
    writeFileSync(revokedFile, `${doomed.id}\n`);
    // The open stream was authorised when it opened; the reconnect after a restart is checked again.
    await sa().kill("SIGKILL");
    await sa().restart().ready();
    await tab.waitForSelector("#token-form", { timeout: 10_000 });
    expect(await tab.textContent("#token-reason")).toContain("revoked");
    expect(await tab.textContent("#conn")).toBe("token needed");
    expect(await tab.evaluate(`localStorage.getItem("shoal.token")`)).toBeNull();
    await tab.fill("#token-input", cluster.token("read").token);
    await tab.click("#token-connect");
    await until(async () => (await tab.textContent("#conn"))?.includes("live via sec-a") ?? false, 5_000, () => "the stream to open again");
    // The list (the view the page was on) learns of a new workflow only from the stream.
    expect(await tab.getAttribute("nav a.active", "data-view")).toBe("workflows");
    const r = await sa().post("/v1/workflows", { name: "ui-after-revoke", steps: [{ id: "only", tool: "sleep_tool", input: { ms: 50 } }] });
    await tab.waitForSelector(`.wf-row[data-workflow="${r.json.workflow_id}"]`, { timeout: 10_000 });
  });

  it("never puts the token in a URL and breaks no CSP rule", () => {
    expect(urls.length).toBeGreaterThan(3);
    const tokens = authorization.map((h) => h.slice(h.indexOf("Bearer ") + 7));
    expect(tokens.length).toBeGreaterThan(0);
    for (const u of urls) {
      expect(u).not.toMatch(/token=/i);
      for (const t of tokens) expect(u).not.toContain(t);
    }
    expect(refusedCsp).toEqual([]);
    // The only console errors: the refusals the form answered (no token, a wrong one, after
    // forgetting) and the stream's reconnects while its node restarted.
    expect(consoleErrors.filter((e) => !/status of 401/.test(e) && !/v1\/inspect' failed: .*ERR_CONNECTION_REFUSED/.test(e))).toEqual([]);
  });

  const shot2 = (name: string) => tab.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
});
