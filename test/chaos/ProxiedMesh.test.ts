import { afterEach, describe, expect, it } from "vitest";
import { until } from "../support/shoalProcess.js";
import { ProxiedMesh } from "./ProxiedMesh.js";

const FAST = ["--heartbeat-ms", "100", "--suspect-after-ms", "300", "--down-after-ms", "600"];
const meshes: ProxiedMesh[] = [];
afterEach(async () => {
  for (const m of meshes.splice(0)) await m.close();
});

const statusesSeenBy = async (mesh: ProxiedMesh, name: string) =>
  Object.fromEntries((await mesh.node(name).nodes()).map((r) => [r.name, r.status]));

describe("a mesh of real nodes behind the fault proxy", () => {
  it("every link between two nodes passes the proxy, named by the node that dialed it", async () => {
    const mesh = await ProxiedMesh.start([{ name: "x-a" }, { name: "x-b" }, { name: "x-c" }], { extra: FAST });
    meshes.push(mesh);
    const pairs = () =>
      mesh.proxy
        .connections()
        .map((c) => [c.from, c.to].sort().join("|"))
        .sort();
    // Two nodes that dial each other at once hold two links for a moment, until the second is
    // refused (4010, the id is connected already): one link per pair once that has settled.
    await until(() => pairs().length === 3, 5_000, () => `links: ${pairs().join(", ")}`);
    expect(pairs()).toEqual(["x-a|x-b", "x-a|x-c", "x-b|x-c"]);
    for (const n of mesh.nodes) {
      for (const row of await n.nodes()) expect(row.address).toBe(mesh.proxy.address(row.name));
    }
  });

  it("a partition cut through the proxy: each side sees the other down and itself up; healed, the mesh is whole", async () => {
    const mesh = await ProxiedMesh.start([{ name: "y-a" }, { name: "y-b" }, { name: "y-c" }], { extra: FAST });
    meshes.push(mesh);
    mesh.proxy.partition([["y-a"], ["y-b", "y-c"]]);
    await until(async () => {
      const [a, b, c] = await Promise.all(["y-a", "y-b", "y-c"].map((n) => statusesSeenBy(mesh, n)));
      return a?.["y-b"] === "down" && a["y-c"] === "down" && b?.["y-a"] === "down" && b["y-c"] === "up" && c?.["y-a"] === "down" && c["y-b"] === "up";
    }, 10_000, () => "the sides never saw each other down");
    mesh.proxy.heal();
    await mesh.whole();
  });

  it("a link cut one way (what y-a sends is lost) takes y-a down for the others", async () => {
    const mesh = await ProxiedMesh.start([{ name: "z-a" }, { name: "z-b" }, { name: "z-c" }], { extra: FAST });
    meshes.push(mesh);
    mesh.proxy.set("z-a", "*", { cut: "drop" });
    await until(async () => (await statusesSeenBy(mesh, "z-b"))["z-a"] === "down" && (await statusesSeenBy(mesh, "z-c"))["z-a"] === "down", 10_000);
    mesh.proxy.heal();
    await mesh.whole();
  });
});
