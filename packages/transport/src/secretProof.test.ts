import type { HelloFrame } from "@shoal/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createNonce, proveSecret } from "./secretProof.js";

const hello = (name: string, extra: Partial<HelloFrame["node"]> = {}): HelloFrame => ({
  t: "hello",
  v: 1,
  cluster: "shoal",
  node: { id: `${name}-id`, name, address: `127.0.0.1:${name.length + 7000}`, capabilities: ["camera"], tools: ["vision_agent"], slots: 4, ...extra },
  nonce: createNonce(),
});

describe("the secret proof covers both hellos whole", () => {
  it("any change to what a node says of itself in its hello changes the proof", () => {
    const dialer = hello("a");
    const acceptor = hello("b");
    const base = proveSecret("s3cret", "acceptor", { dialer, acceptor });
    const edits: ((h: HelloFrame) => HelloFrame)[] = [
      (h) => ({ ...h, node: { ...h.node, slots: 100_000 } }),
      (h) => ({ ...h, node: { ...h.node, tools: [...h.node.tools, "http_request"] } }),
      (h) => ({ ...h, node: { ...h.node, capabilities: ["gpu"] } }),
      (h) => ({ ...h, node: { ...h.node, id: "other" } }),
      (h) => ({ ...h, node: { ...h.node, name: "other" } }),
      (h) => ({ ...h, node: { ...h.node, address: "10.9.9.9:1" } }),
      (h) => ({ ...h, cluster: "other" }),
      (h) => ({ ...h, nonce: createNonce() }),
    ];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: edits.length - 1 }), fc.boolean(), (i, onDialer) => {
        const edit = edits[i] as (h: HelloFrame) => HelloFrame;
        const changed = onDialer ? { dialer: edit(dialer), acceptor } : { dialer, acceptor: edit(acceptor) };
        return proveSecret("s3cret", "acceptor", changed) !== base;
      }),
    );
    expect(proveSecret("s3cret", "dialer", { dialer, acceptor })).not.toBe(base);
    expect(proveSecret("other", "acceptor", { dialer, acceptor })).not.toBe(base);
  });

  it("does not depend on key order or on the proof field", () => {
    const dialer = hello("a");
    const acceptor = hello("b");
    const { node, ...rest } = acceptor;
    const reordered = { node: Object.fromEntries(Object.entries(node).reverse()), ...rest } as HelloFrame;
    expect(proveSecret("k", "acceptor", { dialer, acceptor: { ...reordered, proof: "ab".repeat(32) } })).toBe(proveSecret("k", "acceptor", { dialer, acceptor }));
  });
});
