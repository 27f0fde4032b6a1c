// The printed report: an aligned table and PASS/FAIL lines.

/** Rows of cells as left-aligned columns, three spaces apart; a missing cell prints empty. */
export function table(rows) {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => String(row[col] ?? "").length)));
  return rows.map((row) => row.map((cell, col) => String(cell ?? "").padEnd(widths[col] + 3)).join("").trimEnd()).join("\n");
}

/** "PASS  name: detail" or "FAIL  name: detail". */
export function verdict(name, ok, detail) {
  return `${ok ? "PASS" : "FAIL"}  ${name}: ${detail}`;
}

/** a / b as "1.23x". */
export const ratio = (a, b, digits = 2) => `${(a / b).toFixed(digits)}x`;
