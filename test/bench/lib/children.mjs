// The child processes of a benchmark run: every one is tracked so that none outlives the run,
// whatever happens (a normal end, a thrown error, SIGINT/SIGTERM), and the parent talks to its
// workers over IPC with typed messages ({ type, ... }; a worker reports a failure as
// { type: "error", message }).
import { once } from "node:events";

/** Every child started through track() and not yet exited. */
export const children = new Set();

/**
 * Timeouts of stop() and command() when the caller gives none. A benchmark whose children take
 * longer to drain or to answer raises them once, at start-up.
 */
export const childDefaults = { stopGraceMs: 5_000, commandTimeoutMs: 120_000 };

const cleanups = [];
let installed = false;

/** SIGKILL every tracked child: also ends one left stopped (SIGSTOP), which reads no IPC. */
export function killAll() {
  for (const child of children) child.kill("SIGKILL");
}

// Installed on first use, not on import: a script that merely imports this module keeps Node's
// own signal handling.
function install() {
  if (installed) return;
  installed = true;
  process.on("exit", () => {
    killAll();
    for (const fn of cleanups) fn();
  });
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, () => {
      killAll();
      process.exit(130); // runs the "exit" handler above, and with it the cleanups
    });
  }
}

/** Runs `fn` (synchronous: the process is exiting) after every child has been killed. */
export function atExit(fn) {
  install();
  cleanups.push(fn);
}

/**
 * Tracks `child` until it exits. `name` appears in error messages. `sigterm`: stop() ends it by
 * SIGTERM even though it has an IPC channel (a `shoal node` whose channel only serves a preload,
 * not our "stop" command).
 */
export function track(child, name, { sigterm = false } = {}) {
  install();
  child.benchName = name;
  child.stopBySigterm = sigterm;
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

export const exited = (child) => child.exitCode !== null || child.signalCode !== null;

/**
 * Asks a child to stop (an IPC "stop" to our workers, SIGTERM to anything else) and waits for it
 * to exit; SIGKILL after `graceMs`. Resolves to true when it exited on its own.
 */
export async function stop(child, graceMs = childDefaults.stopGraceMs) {
  if (exited(child)) return true;
  const gone = once(child, "exit");
  if (child.connected && !child.stopBySigterm) child.send({ type: "stop" });
  else child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await gone;
  clearTimeout(timer);
  return child.signalCode !== "SIGKILL";
}

/** SIGKILL, and wait for the exit. */
export async function kill(child) {
  if (exited(child)) return;
  const gone = once(child, "exit");
  child.kill("SIGKILL");
  await gone;
}

const nameOf = (child) => child.benchName ?? child.spawnargs.join(" ");

/** The next IPC message of `type` from a worker; rejects on its error message, exit or timeout. */
export function message(child, type, timeoutMs) {
  return new Promise((resolve, reject) => {
    const done = (fn, value) => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      fn(value);
    };
    const onMessage = (msg) => {
      if (msg?.type === type) done(resolve, msg);
      else if (msg?.type === "error") done(reject, new Error(msg.message));
    };
    const onExit = (code, signal) => done(reject, new Error(`${nameOf(child)} exited (${signal ?? code}) before sending "${type}"`));
    const timer = setTimeout(() => done(reject, new Error(`no "${type}" from ${nameOf(child)} within ${timeoutMs} ms`)), timeoutMs);
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

/** Sends a command to a worker and waits for its answer (a message of the same type). */
export function command(child, msg, timeoutMs = childDefaults.commandTimeoutMs) {
  const answer = message(child, msg.type, timeoutMs);
  child.send(msg);
  return answer;
}

/** Runs a benchmark's main(): a failure is printed and exits 1; no child outlives it. */
export function runMain(main) {
  return main()
    .catch((err) => {
      console.error(`bench failed: ${err.stack ?? err}`);
      process.exitCode = 1;
    })
    .finally(killAll);
}
