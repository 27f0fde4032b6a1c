// Child process: connects to an echo server of one stack and measures it.
// Usage (forked by run.mjs): client.mjs <shoal|raw> <port> <settings as JSON>
// Sends { type: "result", roundTrip, throughput } to the parent over IPC and exits.
import { isDeepStrictEqual } from "node:util";
import { connect } from "./peers.mjs";

const [kind, port, settingsJson] = process.argv.slice(2);
const settings = JSON.parse(settingsJson);
const payload = { n: 1, s: "hello" };

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** One request at a time; returns each round trip in microseconds. */
async function sequential(peer, count) {
  const samples = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const start = process.hrtime.bigint();
    await peer.request(payload);
    samples[i] = Number(process.hrtime.bigint() - start) / 1_000;
  }
  return samples;
}

/** `total` requests with `inFlight` of them outstanding at all times; returns requests/second. */
function pipelined(peer, total, inFlight) {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let done = 0;
    const start = process.hrtime.bigint();
    const launch = () => {
      sent++;
      peer.request(payload).then(onAnswer, reject);
    };
    // Each answer frees one slot, which is refilled at once: the window stays full until the end.
    const onAnswer = () => {
      done++;
      if (done === total) {
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        resolve(total / seconds);
      } else if (sent < total) {
        launch();
      }
    };
    for (let i = 0; i < Math.min(inFlight, total); i++) launch();
  });
}

process.on("disconnect", () => process.exit(1)); // the parent died: do not linger

try {
  const peer = await connect(kind, port);

  // Both stacks must really echo, or the comparison means nothing.
  const echoed = await peer.request(payload);
  if (!isDeepStrictEqual(echoed, payload)) throw new Error(`echo returned ${JSON.stringify(echoed)}`);

  // Warm-up: the first requests run in V8's interpreter, allocate the codec's buffers and grow the
  // socket's; timing them would measure start-up, not the steady state that a busy node lives in.
  await sequential(peer, settings.warmup);
  const samples = (await sequential(peer, settings.samples)).sort();
  const roundTrip = { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };

  // Same for the pipelined run: a short run first lets the JIT see the many-in-flight code paths
  // (full send queue, many pending timers) before the timed one.
  await pipelined(peer, settings.throughputWarmup, settings.inFlight);
  const throughput = await pipelined(peer, settings.throughputTotal, settings.inFlight);

  await peer.close();
  process.send({ type: "result", roundTrip, throughput }, () => process.exit(0));
} catch (err) {
  process.send({ type: "error", message: `${kind} client: ${err.stack ?? err}` }, () => process.exit(1));
}
