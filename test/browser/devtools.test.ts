import { join, resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACTS, launchBrowser } from "../support/browser.js";
import { type NodeProcess, startMesh, stopAll, tempDir, until } from "../support/shoalProcess.js";

const PLUGIN = resolve(import.meta.dirname, "../fixtures/plugins/actors.mjs");
const FAST = ["--heartbeat-ms", "100", "--suspect-after-ms", "300", "--down-after-ms", "600"];
let nodes: NodeProcess[] = [];
let browser: Browser;
let page: Page;

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
    await page.waitForFunction("document.querySelector('#event-log')?.textContent?.split('INC').length === 4");
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
    await page.waitForFunction(`document.querySelector("#actor-host")?.textContent === "${other}"`, undefined, { timeout: 10_000 });
    await a().post(`/v1/actors/${id}/events`, { event: { type: "INC" } });
    await until(async () => (await page.textContent("pre"))?.includes('"count": 3') ?? false, 5_000);
    expect(await page.textContent("main")).toContain(`moved: ${first}`);
    await shot("08-actor-moved");
  });
});
