import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { ShoalError } from "@shoal/protocol";
import { z } from "zod";
import { defineTool } from "../definitions.js";
import { type LumaFrame, brightness, decodeFrame, motion } from "./imageStats.js";

export interface VisionSettings {
  /** Folder the camera writes frames into (PNG or JPEG); the newest are analysed. */
  cameraDir?: string | undefined;
  /** Thresholds of the verdict. */
  darkBelow?: number;
  brightAbove?: number;
  motionAbove?: number;
}

const Input = z.object({ frames: z.number().int().min(1).max(100).default(3) }).strict();

/**
 * Reads the latest frames of this node's camera and computes real image statistics: mean
 * brightness, motion between consecutive frames (mean absolute luma change), and a verdict
 * from thresholds: `dark`, `overexposed`, `motion` or `normal`.
 */
export function visionAgent(settings: VisionSettings) {
  const darkBelow = settings.darkBelow ?? 0.15;
  const brightAbove = settings.brightAbove ?? 0.9;
  const motionAbove = settings.motionAbove ?? 0.05;
  return defineTool({
    name: "vision_agent",
    capabilities: ["camera"],
    input: Input,
    async run(input, ctx) {
      const dir = settings.cameraDir;
      if (!dir) throw new ShoalError("SHOAL_ERR_TOOL_NOT_CONFIGURED", `vision_agent on ${ctx.node}: no camera folder; set camera-dir in the node config or SHOAL_CAMERA_DIR`);
      let names: string[];
      try {
        names = (await readdir(dir)).filter((n) => /\.(png|jpe?g)$/i.test(n));
      } catch (err) {
        throw new ShoalError("SHOAL_ERR_TOOL_NOT_CONFIGURED", `vision_agent on ${ctx.node}: cannot read camera folder ${dir}: ${(err as Error).message}`);
      }
      const withTimes = await Promise.all(names.map(async (n) => ({ n, t: (await stat(join(dir, n))).mtimeMs })));
      // Newest last; same mtime (frames written in one burst) falls back to the name.
      const latest = withTimes.sort((a, b) => a.t - b.t || a.n.localeCompare(b.n)).slice(-input.frames).map((x) => x.n);
      if (latest.length === 0) throw new ShoalError("SHOAL_ERR_NO_FRAMES", `vision_agent on ${ctx.node}: no PNG or JPEG frames in ${dir}`);
      const frames: LumaFrame[] = [];
      for (const name of latest) {
        ctx.signal.throwIfAborted();
        frames.push(decodeFrame(await readFile(join(dir, name)), name));
      }
      const perFrame = frames.map((f, i) => ({ file: latest[i] as string, brightness: round(brightness(f)) }));
      const diffs = frames.slice(1).map((f, i) => motion(frames[i] as LumaFrame, f)).filter((m): m is number => m !== undefined);
      const meanBrightness = perFrame.reduce((s, f) => s + f.brightness, 0) / perFrame.length;
      const meanMotion = diffs.length ? diffs.reduce((s, m) => s + m, 0) / diffs.length : 0;
      const verdict = meanBrightness < darkBelow ? "dark" : meanBrightness > brightAbove ? "overexposed" : meanMotion > motionAbove ? "motion" : "normal";
      ctx.log.debug({ frames: latest.length, verdict }, "frames analysed");
      return { camera: ctx.node, frames: latest.length, brightness: round(meanBrightness), motion: round(meanMotion), verdict, per_frame: perFrame };
    },
  });
}

const round = (n: number) => Math.round(n * 10_000) / 10_000;
