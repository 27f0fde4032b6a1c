// Child process: the client end of one stack. Usage (forked by run.mjs):
//   client.mjs <shoal|shoal-tls|raw> <port> [PKI_DIR]
// Connects, checks that the server really echoes, says "ready", then runs the parent's commands
// one at a time and answers each with its measurements:
//   { type: "sequential", count }          -> { type: "sequential", samples: [us, ...] }
//   { type: "pipelined", count, inFlight } -> { type: "pipelined", count, seconds }
//   { type: "stop" }                        -> closes the connection and exits
import { isDeepStrictEqual } from "node:util";
import { connect } from "./peers.mjs";

const [kind, port, pkiDir] = process.argv.slice(2);
const payload = { n: 1, s: "hello" };

/** One request at a time; returns each round trip in microseconds. */
async function sequential(peer, count) {
  const samples = new Array(count);
  for (let i = 0; i < count; i++) {
    const start = process.hrtime.bigint();
    await peer.request(payload);
    samples[i] = Number(process.hrtime.bigint() - start) / 1_000;
  }
  return samples;
}

/** `count` requests with `inFlight` of them outstanding at all times; returns the seconds taken. */
function pipelined(peer, count, inFlight) {
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
      if (done === count) resolve(Number(process.hrtime.bigint() - start) / 1e9);
      else if (sent < count) launch();
    };
    for (let i = 0; i < Math.min(inFlight, count); i++) launch();
  });
}

const fail = (err) => process.send({ type: "error", message: `${kind} client: ${err?.stack ?? err}` }, () => process.exit(1));
process.on("disconnect", () => process.exit(1)); // the parent died: do not linger

try {
  const peer = await connect(kind, port, pkiDir);

  // Both stacks must really echo, or the comparison means nothing.
  const echoed = await peer.request(payload);
  if (!isDeepStrictEqual(echoed, payload)) throw new Error(`echo returned ${JSON.stringify(echoed)}`);

  process.on("message", (msg) => {
    switch (msg?.type) {
      case "sequential":
        sequential(peer, msg.count).then((samples) => process.send({ type: "sequential", samples }), fail);
        return;
      case "pipelined":
        pipelined(peer, msg.count, msg.inFlight).then((seconds) => process.send({ type: "pipelined", count: msg.count, seconds }), fail);
        return;
      case "stop":
        // A normal exit (not a kill) so that `--cpu-prof` can write its profile.
        peer.close().finally(() => process.exit(0));
        return;
    }
  });
  process.send({ type: "ready" });
} catch (err) {
  fail(err);
}
