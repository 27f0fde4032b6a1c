import { z } from "zod";

// zod compiles object parsers with `new Function` unless told not to, and probes for it when a
// schema is made: the page's CSP forbids eval, and the probe is reported as a violation. So this
// runs before any schema module: main.ts imports it first.
z.config({ jitless: true });
