import { mkdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PNG } from "pngjs";

export interface SampleFrameOptions {
  count?: number;
  width?: number;
  height?: number;
  /** Gray level of the background, 0..255. */
  background?: number;
  /** Gray level of a square that moves to a new, non-overlapping place on every frame. */
  square?: number;
  /** Side of the square in pixels; 0 for no square (no motion). */
  side?: number;
}

/**
 * Writes PNG frames with known statistics: a uniform background and a square that jumps to a
 * non-overlapping spot each frame. Brightness is exact (background + square share), and so is
 * motion (twice the square's share of the level difference), so tests can check the numbers.
 */
export function writeSampleFrames(dir: string, options: SampleFrameOptions = {}): { brightness: number; motion: number } {
  const { count = 3, width = 64, height = 48, background = 100, square = 200, side = 16 } = options;
  mkdirSync(dir, { recursive: true });
  const spots = Math.max(1, Math.floor(width / Math.max(side, 1)));
  const start = Date.now() - count * 1000;
  for (let f = 0; f < count; f++) {
    const png = new PNG({ width, height });
    const x0 = (f % spots) * side;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const inSquare = side > 0 && x >= x0 && x < x0 + side && y < side;
        const v = inSquare ? square : background;
        const i = (y * width + x) * 4;
        png.data[i] = v;
        png.data[i + 1] = v;
        png.data[i + 2] = v;
        png.data[i + 3] = 255;
      }
    }
    const file = join(dir, `frame-${String(f).padStart(4, "0")}.png`);
    writeFileSync(file, PNG.sync.write(png));
    const t = new Date(start + f * 1000);
    utimesSync(file, t, t);
  }
  const share = (side * side) / (width * height);
  return {
    brightness: (background + (square - background) * share) / 255,
    motion: count > 1 && side > 0 && spots > 1 ? (2 * Math.abs(square - background) * share) / 255 : 0,
  };
}
