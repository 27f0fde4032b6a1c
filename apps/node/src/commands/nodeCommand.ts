import { pino } from "pino";
import { type NodeFlags, resolveNodeConfig } from "../config.js";
import { startNode } from "../startNode.js";

/** `shoal node`: runs until SIGTERM or SIGINT, then leaves the mesh and exits 0. */
export async function runNodeCommand(options: Record<string, unknown>): Promise<void> {
  // commander hands over `dataDir`; the config keys are the flag names, `data-dir`.
  const flags = Object.fromEntries(
    Object.entries(options).map(([key, value]) => [key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), value]),
  ) as NodeFlags;
  const config = resolveNodeConfig(flags);
  const logger = pino({ level: config["log-level"], base: { pid: process.pid } });
  const node = await startNode({ config, logger, debugRoutes: process.env.SHOAL_DEBUG_ROUTES === "1" });
  let signals = 0;
  const shutdown = (signal: NodeJS.Signals) => {
    if (++signals > 1) process.exit(1); // a second signal means "now"
    logger.info({ signal }, "shutting down");
    node.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}
