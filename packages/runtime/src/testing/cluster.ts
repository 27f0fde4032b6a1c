import { Mesh } from "@shoal/mesh";
import { type Logger, monotonicNow, silentLogger } from "@shoal/protocol";
import { type TestNode, startTransport } from "@shoal/transport/testing";
import { type AnyActorRef, assign, createMachine, sendParent, sendTo, setup } from "xstate";
import { z } from "zod";
import { type HostedLogic, LogicRegistry } from "../LogicRegistry.js";
import { Runtime } from "../Runtime.js";

/** A counter that counts INC events; DONE ends it with the count. */
export const counter = setup({ types: { context: {} as { count: number }, input: {} as { start?: number } } }).createMachine({
  id: "counter",
  context: ({ input }) => ({ count: input?.start ?? 0 }),
  initial: "counting",
  states: {
    counting: {
      on: {
        INC: { actions: assign({ count: ({ context }) => context.count + 1 }) },
        DONE: "finished",
      },
    },
    finished: { type: "final" },
  },
  output: ({ context }) => context.count,
});

/** Waits `ms` in `waiting`, then moves to `fired` by an `after` transition. */
export const delayed = createMachine({
  id: "delayed",
  initial: "waiting",
  states: {
    waiting: { after: { 600: "fired" } },
    fired: { on: { FINISH: "end" } },
    end: { type: "final" },
  },
});

/** How long `kid` waits before it ticks. */
export const KID_TICK_MS = 1_500;

/** A child machine: counts INC and reports each count to its parent; ticks once, KID_TICK_MS after it starts. */
const kid = setup({ types: { context: {} as { count: number } } }).createMachine({
  id: "kid",
  context: { count: 0 },
  initial: "idle",
  states: { idle: { after: { [KID_TICK_MS]: "ticked" } }, ticked: { entry: sendParent({ type: "TICKED" }) } },
  on: { INC: { actions: [assign({ count: ({ context }) => context.count + 1 }), sendParent(({ context }) => ({ type: "COUNTED", count: context.count }))] } },
});

/**
 * A parent that spawns `kid` with a systemId, forwards INC to it (found through the system by
 * that systemId) and mirrors what it reports. Spawned by name, XState can persist it; spawned
 * from inline logic, it cannot.
 */
function familyMachine(spawnKid: "by-name" | "inline") {
  return setup({
    types: { context: {} as { kid: AnyActorRef; childCount: number; kidTicked: boolean }, events: {} as { type: "INC" } | { type: "COUNTED"; count: number } | { type: "TICKED" } },
    actors: { kid },
  }).createMachine({
    id: "family",
    context: ({ spawn }) => ({
      kid: spawnKid === "by-name" ? spawn("kid", { id: "kid", systemId: "kid-counter" }) : spawn(kid, { systemId: "kid-counter" }),
      childCount: 0,
      kidTicked: false,
    }),
    on: {
      INC: { actions: sendTo(({ system }) => system.get("kid-counter"), { type: "INC" }) },
      COUNTED: { actions: assign({ childCount: ({ event }) => event.count }) },
      TICKED: { actions: assign({ kidTicked: true }) },
    },
  });
}

/** Every run of `slow`, across the whole test cluster: proves re-runs happen and how often. */
export const runs: { node: string; key: string; attempt: number; migration: boolean }[] = [];
const releases = new Map<string, () => void>();
/** Lets the newest run of `slow` finish. */
export const releaseSlow = () => [...releases.values()].at(-1)?.();
/** Lets the run of `slow` on one node finish. */
export const releaseSlowOn = (node: string) => releases.get(node)?.();

export const testLogic: HostedLogic[] = [
  { name: "counter", machine: counter },
  { name: "delayed", machine: delayed },
  { name: "family", machine: familyMachine("by-name") },
  { name: "inline-family", machine: familyMachine("inline") },
  {
    name: "double",
    input: z.object({ n: z.number() }),
    run: (input) => (input as { n: number }).n * 2,
  },
  {
    name: "fail",
    run: () => {
      throw new Error("tool broke");
    },
  },
  {
    name: "slow",
    run: (_input, ctx) => {
      runs.push({ node: ctx.node, key: ctx.key, attempt: ctx.attempt, migration: ctx.migration });
      return new Promise((resolve) => {
        releases.set(ctx.node, () => resolve(`finished on ${ctx.node}`));
        ctx.signal.addEventListener("abort", () => resolve("aborted"));
      });
    },
  },
  {
    name: "sleep",
    run: (input, ctx) =>
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve(ctx.node), (input as { ms: number }).ms);
        ctx.signal.addEventListener("abort", () => clearTimeout(timer));
      }),
  },
  { name: "bad-output", output: z.object({ ok: z.boolean() }), run: () => ({ ok: "yes" }) },
  { name: "camera-only", capabilities: ["camera"], run: (_i: unknown, ctx: { node: string }) => ctx.node },
];

export interface RuntimeNode {
  name: string;
  node: TestNode;
  mesh: Mesh;
  runtime: Runtime;
  /** Stops the node as a crash would look to its peers: no goodbye, the port closes. */
  crash(): Promise<void>;
  close(): Promise<void>;
}

export const FAST = { heartbeatMs: 50, suspectAfterMs: 200, downAfterMs: 400 };

export async function startRuntimeNode(
  name: string,
  options: {
    seeds?: string[];
    capabilities?: string[];
    slots?: number;
    maxActors?: number;
    logic?: HostedLogic[];
    logger?: Logger;
    /** A new life of a node that crashed: its port and its id. */
    port?: number;
    id?: string;
    /** The address peers dial it at, when a test's proxy stands in front of it. */
    advertise?: string;
  } = {},
): Promise<RuntimeNode> {
  const registry = new LogicRegistry();
  for (const def of options.logic ?? testLogic) registry.register(def);
  const capabilities = options.capabilities ?? [];
  const slots = options.slots ?? 4;
  const node = await startTransport(name, {
    ...FAST,
    deadAfterMs: FAST.downAfterMs,
    backoff: { initialMs: 20, maxMs: 200 },
    identity: { capabilities, tools: registry.hostable(capabilities), slots },
    ...(options.port !== undefined && { port: options.port }),
    ...(options.id !== undefined && { id: options.id }),
    ...(options.advertise !== undefined && { advertise: options.advertise }),
  });
  const mesh = new Mesh({ transport: node.transport, seeds: options.seeds ?? [], ...FAST, logger: silentLogger });
  const runtime = new Runtime({
    transport: node.transport,
    mesh,
    registry,
    slots,
    logger: options.logger ?? silentLogger,
    updateIntervalMs: 5,
    ...(options.maxActors !== undefined && { maxActors: options.maxActors }),
  });
  mesh.setSlots(slots);
  mesh.start();
  let closed = false;
  return {
    name,
    node,
    mesh,
    runtime,
    async crash() {
      closed = true;
      await node.close();
    },
    async close() {
      if (closed) return;
      closed = true;
      await mesh.leave();
      await node.close();
    },
  };
}

/** Waits until every node sees every other as up. */
export async function converged(nodes: RuntimeNode[], timeoutMs = 5_000): Promise<void> {
  const end = monotonicNow() + timeoutMs;
  while (!nodes.every((n) => n.mesh.members().filter((m) => m.status === "up").length === nodes.length)) {
    if (monotonicNow() > end) throw new Error("mesh did not converge");
    await new Promise((r) => setTimeout(r, 20));
  }
}
