// The tools of the workflow benchmark, loaded by every node with `--plugin` (plain objects, no
// imports but node:fs, as a user's plugin could be):
//   noop  returns at once: a step that costs nothing but the orchestration around it.
//   gate  waits until the file `input.file` exists, then returns: holds every workflow of the
//         burst at its first step until the load generator has submitted all of them, so that
//         all are in flight at the same moment. One timer per process checks the files of every
//         waiting gate, not one per gate.
import { existsSync } from "node:fs";

const waiting = new Map(); // file -> Set of callbacks
let poller;

function whenExists(file, callback) {
  if (existsSync(file)) return callback();
  let set = waiting.get(file);
  if (!set) {
    set = new Set();
    waiting.set(file, set);
  }
  set.add(callback);
  poller ??= setInterval(() => {
    for (const [f, callbacks] of waiting) {
      if (!existsSync(f)) continue;
      waiting.delete(f);
      for (const cb of callbacks) cb();
    }
    if (waiting.size === 0) {
      clearInterval(poller);
      poller = undefined;
    }
  }, 20);
  return () => set.delete(callback);
}

export default [
  { name: "noop", run: (input) => ({ ok: true, n: input?.n ?? 0 }) },
  {
    name: "gate",
    run: (input, ctx) =>
      new Promise((resolve) => {
        const start = Date.now();
        const forget = whenExists(String(input.file), () => resolve({ ok: true, waitedMs: Date.now() - start }));
        ctx.signal.addEventListener("abort", () => {
          forget?.();
          resolve({ ok: false, aborted: true });
        });
      }),
  },
];
