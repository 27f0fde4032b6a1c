import { defineConfig } from "vitest/config";

// These tests start real node processes: give each test room beyond vitest's 5 s default, and
// run files one at a time so timing-sensitive tests do not share the 2 cores with each other.
export default defineConfig({
  test: { testTimeout: 30_000, hookTimeout: 30_000, fileParallelism: false },
});
