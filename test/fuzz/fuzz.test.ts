import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Findings } from "./Findings.js";
import { FuzzMesh, rssGrowth } from "./FuzzMesh.js";
import { type Budget, fuzzFrames, fuzzHttp, replay } from "./campaign.js";

/**
 * Hostile input against 3 real nodes: frames on /mesh, then HTTP requests and raw bytes on the
 * API port. In `npm test` a fixed seed and a budget that fits in about a minute; `npm run fuzz`
 * (test/fuzz/run.mjs) sets SHOAL_FUZZ_LONG=1 and the budgets below for the long run. See README.md.
 */
const env = process.env;
const long = env.SHOAL_FUZZ_LONG === "1";
const num = (value: string | undefined, fallback: number) => (value === undefined || value === "" ? fallback : Number(value));
const minutes = num(env.SHOAL_FUZZ_MINUTES, long ? 20 : 1.1);
const seed = num(env.SHOAL_FUZZ_SEED, 42);
const replayOf = env.SHOAL_FUZZ_REPLAY;
/** RSS growth per node the run must stay under, counted from the end of the warm-up. */
const RSS_GROWTH_MB = long ? 50 : 100;
/**
 * Frame rounds (50 sessions each, about 1,000 frames, frames of up to 17 MiB among them, about
 * 3.5 s a round) before RSS growth counts: README, "RSS growth". The long run's RSS reaches its
 * plateau within about 30 s; the CI part, with 3,000 frames in all, has room for one round.
 */
const WARMUP_ROUNDS = long ? 10 : 1;
/** Idle time before the long run's rest figures: V8 shrinks an idle heap after about 8 s. */
const REST_MS = 15_000;

const started = Date.now();
let framesRounds = 0;
const total = minutes * 60_000;
const budget: Budget = {
  seed,
  frames: num(env.SHOAL_FUZZ_FRAMES, long ? 100_000 : 3_000),
  requests: num(env.SHOAL_FUZZ_REQUESTS, long ? 10_000 : 2_500),
  // Most of the time goes to frames (sessions, handshakes, restarts); HTTP requests are quick.
  framesUntil: started + total * 0.6,
  httpUntil: started + total,
  shrinkMs: long ? 60_000 : 6_000,
  shrinkTotalMs: long ? 5 * 60_000 : 12_000,
  onRound: async (part) => {
    if (part === "frames" && ++framesRounds === WARMUP_ROUNDS) await mesh.markSettled();
    if (long) await progress();
  },
};
const findings = new Findings(seed);
let lastProgress = 0;
async function progress(): Promise<void> {
  if (Date.now() - lastProgress < 30_000) return;
  lastProgress = Date.now();
  const crashes = mesh.slots.reduce((n, s) => n + s.crashes, 0);
  console.warn(`fuzz: ${((Date.now() - started) / 60_000).toFixed(1)} min, ${findings.frames.units} frames, ${findings.http.units} requests, ${crashes} crashes, ${findings.findings.size} findings; MB ${await mesh.memoryLine()}`);
}
const mesh = new FuzzMesh();

describe(long ? "fuzz: the long run" : "fuzz: 3 real nodes take hostile frames and requests", () => {
  beforeAll(async () => {
    await mesh.start();
    if (long) await mesh.rest("before", REST_MS);
  }, 60_000);

  afterAll(async () => {
    findings.ended = Date.now();
    if (long && !mesh.anyDead()) await mesh.rest("after", REST_MS);
    await mesh.close();
    const table = findings.table(mesh.slots, { rssGrowthMb: RSS_GROWTH_MB });
    if (env.SHOAL_FUZZ_REPORT) writeFileSync(env.SHOAL_FUZZ_REPORT, `${table}\n`);
    else console.warn(table);
  }, 60_000);

  if (replayOf) {
    it("replays one input", async () => {
      const [part, replaySeed, ...path] = replayOf.split(":");
      if (part !== "frames" && part !== "http") throw new Error(`--replay wants frames:SEED:PATH or http:SEED:PATH, got ${replayOf}`);
      const text = await replay(mesh, findings, part, Number(replaySeed), path.join(":"));
      if (env.SHOAL_FUZZ_REPORT) writeFileSync(`${env.SHOAL_FUZZ_REPORT}.replay`, `${text}\n`);
      else console.warn(text);
      expect(findings.summary()).toEqual([]);
    }, 120_000);
    return;
  }

  it(
    "frames on /mesh: no node exits, each answers /healthz and sees all 3 up after every session",
    async () => {
      await fuzzFrames(mesh, findings, budget);
      // A run that sent almost nothing proves nothing.
      expect(findings.frames.units).toBeGreaterThan(long ? 1_000 : 500);
      expect(findings.summary("frames")).toEqual([]);
    },
    total + 120_000,
  );

  it(
    "HTTP requests and raw bytes: no node exits, no 5xx, every 4xx has its error body",
    async () => {
      await fuzzHttp(mesh, findings, budget);
      expect(findings.http.units).toBeGreaterThan(long ? 1_000 : 500);
      expect(findings.summary("http")).toEqual([]);
    },
    total + 120_000,
  );

  it("RSS of each node grows less than the bound over the run", () => {
    for (const slot of mesh.slots) expect(rssGrowth(slot).growth, slot.name).toBeLessThan(RSS_GROWTH_MB);
  });
});
