import { describe, expect, it } from "vitest";
import { formatTable } from "./formatTable.js";

describe("formatTable", () => {
  it("aligns columns to the widest cell and trims line ends", () => {
    expect(formatTable(["A", "BB"], [["xxx", "y"], ["z", ""]])).toBe("A    BB\nxxx  y\nz\n");
  });
});
