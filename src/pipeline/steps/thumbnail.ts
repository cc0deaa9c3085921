import fs from "node:fs";
import path from "node:path";
import { StepError } from "../errors.js";
import { even, FFMPEG_INSTALL_HINT, ffmpegReason, fileArg, previousProbe, probeFile } from "../media.js";
import { checkKnown, intOption, MAX_TIMER_MS, optionError } from "../options.js";
import { cleanStaleTemps, writeAtomic } from "../outputs.js";
import { runChecked } from "../process.js";
import type { Step } from "../step.js";
import { mediaSettings, type StepsConfig } from "../config.js";


const OPTIONS = ["at", "width", "quality", "timeoutMs"] as const;
const PERCENT = /^(\d+(?:\.\d+)?)%$/;
const SECONDS = /^\d+(?:\.\d+)?$/;

type At = { percent: number } | { seconds: number };

function parseAt(options: Readonly<Record<string, unknown>>): At {
  const at = options.at;
  if (at === undefined) return { percent: 10 };
  if (typeof at === "number" && Number.isFinite(at) && at >= 0) return { seconds: at };
  if (typeof at === "string") {
    const p = PERCENT.exec(at.trim());
    if (p && Number(p[1]) <= 100) return { percent: Number(p[1]) };
    if (SECONDS.test(at.trim())) return { seconds: Number(at.trim()) };
  }
  throw optionError("thumbnail", "at", 'must be seconds (a number >= 0) or a percentage of the duration such as "10%"', at);
}

/** A file name for this step's output: `<step name>.jpg` when the name is a safe file name. */
function outputName(stepName: string): string {
  return /^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(stepName) ? `${stepName}.jpg` : "thumbnail.jpg";
}

/**
 * `thumbnail`: one JPEG frame, `options.at` (seconds, or "N%" of the duration; default "10%"),
 * `options.width` pixels wide (default 320; height by aspect, even), `options.quality` 2-31
 * (ffmpeg -q:v, lower is better; default 3). Written atomically to `<outputDir>/thumbnail.jpg`
 * (`<step name>.jpg` for a step named otherwise).
 */
export function createThumbnailStep(config: StepsConfig = {}): Step {
  const { ffmpeg, ffprobe } = mediaSettings(config);
  return {
    kind: "thumbnail",
    validateOptions(options) {
      checkKnown("thumbnail", options, OPTIONS);
      parseAt(options);
      intOption("thumbnail", options, "width", 16, 7680);
      intOption("thumbnail", options, "quality", 2, 31);
      intOption("thumbnail", options, "timeoutMs", 1, MAX_TIMER_MS);
    },
    async run(input, ctx) {
      const at = parseAt(input.options);
      const width = intOption("thumbnail", input.options, "width", 16, 7680, 320);
      const quality = intOption("thumbnail", input.options, "quality", 2, 31, 3);
      const timeoutMs = intOption("thumbnail", input.options, "timeoutMs", 1, MAX_TIMER_MS, 120_000);
      const name = outputName(input.name);
      cleanStaleTemps(input.outputDir, [name]);

      const probe = previousProbe(input.previous) ?? (await probeFile(ffprobe, input.path, { signal: ctx.signal }));
      const video = probe.video;
      if (!video) throw new StepError(`not a video: no video stream in ${input.path}`, { retryable: false });
      const duration = probe.durationS ?? 0;
      let atS = "percent" in at ? (duration * at.percent) / 100 : at.seconds;
      // Past the last frame ffmpeg writes nothing: stay one frame (or 0.1 s) before the end.
      const lastFrame = Math.max(0, duration - 1 / (video.fps ?? 10));
      if (duration > 0) atS = Math.min(atS, lastFrame);
      atS = Math.round(atS * 1000) / 1000;
      const height = even((width * video.displayHeight) / video.displayWidth);
      const final = path.join(input.outputDir, name);

      const grab = async (seconds: number, temp: string): Promise<number> => {
        await runChecked(
          ffmpeg,
          [
            ...["-nostdin", "-hide_banner", "-v", "error", "-y"],
            ...["-ss", String(seconds), "-i", fileArg(input.path)],
            ...["-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn"],
            ...["-vf", `scale=${width}:${height}`, "-c:v", "mjpeg", "-q:v", String(quality)],
            ...["-f", "image2", "-update", "1", fileArg(temp)],
          ],
          {
            signal: ctx.signal,
            timeoutMs,
            label: "ffmpeg",
            installHint: FFMPEG_INSTALL_HINT,
            classify: (r) =>
              r.code !== null && /Invalid data found|moov atom not found|does not contain any stream/.test(r.stderrTail)
                ? { retryable: false, message: `not a video: ${input.path}: ${ffmpegReason(r.stderrTail, input.path)}` }
                : undefined,
          },
        );
        try {
          return fs.statSync(temp).size;
        } catch {
          return 0;
        }
      };

      const sizeBytes = await writeAtomic(final, async (temp) => {
        let size = await grab(atS, temp);
        if (size === 0 && atS > 0) {
          // No frame there (a damaged or oddly timed file): take the first one instead.
          atS = 0;
          size = await grab(0, temp);
        }
        if (size === 0) throw new StepError(`thumbnail: ffmpeg decoded no frame from ${input.path}`, { retryable: false });
        return size;
      });
      ctx.progress(100);
      return { file: final, width, height, atS, sizeBytes };
    },
  };
}
