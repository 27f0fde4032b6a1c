// Child process: the echo server of one stack. Usage (forked by run.mjs):
//   server.mjs <shoal|shoal-tls|raw> [PKI_DIR]
// Tells the parent its port over IPC, then serves until the parent says "stop" or goes away.
import { startServer } from "./peers.mjs";

const [kind, pkiDir] = process.argv.slice(2);
try {
  const server = await startServer(kind, pkiDir);
  const stop = async () => {
    await server.close();
    // A normal exit (not a kill) so that `--cpu-prof` can write its profile.
    process.exit(0);
  };
  process.on("message", (msg) => {
    if (msg?.type === "stop") void stop();
  });
  process.on("disconnect", () => process.exit(0)); // the parent died: do not linger
  process.send({ type: "ready", port: server.port });
} catch (err) {
  process.send({ type: "error", message: `${kind} server: ${err.stack ?? err}` }, () => process.exit(1));
}
