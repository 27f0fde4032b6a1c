import { ShoalError } from "@shoal/protocol";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";

/** A frame reduced to what the statistics need: its luma, sampled on a grid. */
export interface LumaFrame {
  width: number;
  height: number;
  /** Luma in [0, 1] of every `step`-th pixel in both directions. */
  luma: Float32Array;
}

/** Keeps the work per frame bounded on big camera images: at most ~64k samples. */
const MAX_SAMPLES = 65_536;

export function decodeFrame(bytes: Buffer, name: string): LumaFrame {
  let width: number;
  let height: number;
  let rgba: Uint8Array;
  try {
    if (bytes[0] === 0x89 && bytes[1] === 0x50) {
      const png = PNG.sync.read(bytes);
      ({ width, height } = png);
      rgba = png.data;
    } else if (bytes[0] === 0xff && bytes[1] === 0xd8) {
      const img = jpeg.decode(bytes, { useTArray: true, maxMemoryUsageInMB: 256 });
      ({ width, height } = img);
      rgba = img.data;
    } else {
      throw new Error("neither PNG nor JPEG");
    }
  } catch (err) {
    throw new ShoalError("SHOAL_ERR_BAD_IMAGE", `${name}: ${(err as Error).message}`, { cause: err });
  }
  const step = Math.max(1, Math.ceil(Math.sqrt((width * height) / MAX_SAMPLES)));
  const cols = Math.ceil(width / step);
  const rows = Math.ceil(height / step);
  const luma = new Float32Array(cols * rows);
  let k = 0;
  for (let y = 0; y < height; y += step) {
    for (let x = 0; x < width; x += step) {
      const i = (y * width + x) * 4;
      // Rec. 709 luma of the sRGB values, scaled to [0, 1].
      luma[k++] = (0.2126 * (rgba[i] ?? 0) + 0.7152 * (rgba[i + 1] ?? 0) + 0.0722 * (rgba[i + 2] ?? 0)) / 255;
    }
  }
  return { width, height, luma };
}

export function brightness(frame: LumaFrame): number {
  let sum = 0;
  for (const v of frame.luma) sum += v;
  return frame.luma.length ? sum / frame.luma.length : 0;
}

/** Mean absolute luma change between two frames of the same size; undefined when sizes differ. */
export function motion(a: LumaFrame, b: LumaFrame): number | undefined {
  if (a.width !== b.width || a.height !== b.height) return undefined;
  let sum = 0;
  for (let i = 0; i < a.luma.length; i++) sum += Math.abs((a.luma[i] ?? 0) - (b.luma[i] ?? 0));
  return a.luma.length ? sum / a.luma.length : 0;
}
