import { defineConfig } from "vite";

// Served by every node at /devtools, from this build: no dev server in production.
export default defineConfig({
  base: "/devtools/",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, target: "es2022" },
  server: { proxy: { "/v1": { target: process.env.SHOAL_NODE_URL ?? "http://127.0.0.1:7400", ws: true } } },
});
