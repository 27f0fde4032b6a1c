import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, extname, join, normalize } from "node:path";
import { ShoalError } from "@shoal/protocol";
import type { Handler } from "./Router.js";

/** Content types of the built inspector's files (the devtools bench's stand-in node serves them too). */
export const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

/**
 * The inspector's page runs only its own scripts and styles and talks only to this node: an
 * injected text cannot run script, load from elsewhere, or send what it read away.
 */
export const DEVTOOLS_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

/** Where the built inspector lives: `@shoal/devtools`'s `dist`, built with the workspace. */
export function devtoolsRoot(): string | undefined {
  try {
    return join(dirname(createRequire(import.meta.url).resolve("@shoal/devtools/package.json")), "dist");
  } catch {
    return undefined;
  }
}

/** Serves `/devtools` and its assets from the built inspector; any other path under it is the app. */
export function devtoolsHandler(root: string | undefined): Handler {
  return async ({ url }) => {
    if (!root) throw new ShoalError("SHOAL_ERR_NOT_FOUND", "this node was built without devtools");
    const rel = url.pathname.replace(/^\/devtools\/?/, "") || "index.html";
    const file = normalize(join(root, rel));
    if (!file.startsWith(root)) throw new ShoalError("SHOAL_ERR_NOT_FOUND", `no asset ${url.pathname}`);
    const ext = extname(file);
    try {
      return { text: await readFile(file), contentType: CONTENT_TYPES[ext] ?? "application/octet-stream", headers: DEVTOOLS_HEADERS };
    } catch {
      if (ext && ext !== ".html") throw new ShoalError("SHOAL_ERR_NOT_FOUND", `no asset ${url.pathname}`);
      return { text: await readFile(join(root, "index.html")), contentType: CONTENT_TYPES[".html"] as string, headers: DEVTOOLS_HEADERS };
    }
  };
}
