import fs from "node:fs";
import path from "node:path";
import type { TranscodeProfile } from "../../config/schema.js";
import { mediaSettings, type StepsConfig } from "../config.js";
import { StepError } from "../errors.js";
import { FFMPEG_INSTALL_HINT, ffmpegReason, fileArg, previousProbe, probeFile, scaledSize, type ProbeOutputs } from "../media.js";
import { boolOption, checkKnown, intOption, MAX_TIMER_MS, optionError, stringOption } from "../options.js";
import { cleanStaleTemps, writeAtomic } from "../outputs.js";
import { lastLines, runProcess } from "../process.js";
import type { Step } from "../step.js";

export interface TranscodeTuning {
  /** Between SIGTERM and SIGKILL when ffmpeg is stopped (default KILL_GRACE_MS). */
  readonly killGraceMs?: number;
}

/**
 * ffmpeg answers SIGTERM by flushing the encoder (x264's lookahead: up to a couple of seconds at
 * slow presets) and finishing the file. A stopped transcode's output is discarded anyway, so it
 * gets only this long before SIGKILL: a cancel stops it within about half a second.
 */
const KILL_GRACE_MS = 500;

export const DEFAULT_PROFILE = "web-720p";
const OPTIONS = ["profile", "stallTimeoutMs", "skipIfMatches", "timeoutMs"] as const;

/** ffprobe's codec name for each encoder. */
const CODEC_OF: Record<string, string> = { libx264: "h264", libx265: "hevc", aac: "aac", libopus: "opus", libmp3lame: "mp3" };
const MUXER_OF: Record<string, string> = { mp4: "mp4", mov: "mov", mkv: "matroska" };
/** What ffprobe's format_name says for a file of each container, and its usual extensions. */
const CONTAINER_MATCH: Record<string, { format: RegExp; ext: RegExp }> = {
  mp4: { format: /(^|,)mp4(,|$)/, ext: /\.(mp4|m4v)$/i },
  mov: { format: /(^|,)mov(,|$)/, ext: /\.mov$/i },
  mkv: { format: /(^|,)matroska(,|$)/, ext: /\.mkv$/i },
};

/** ffmpeg's complaint about the input rather than about us: retrying will not help. */
const BAD_INPUT = /Invalid data found when processing input|moov atom not found|does not contain any stream|could not find codec parameters/i;

function matchesProfile(probe: ProbeOutputs, file: string, profile: TranscodeProfile, target: { width: number; height: number }): boolean {
  const v = probe.video;
  if (!v) return false;
  const c = CONTAINER_MATCH[profile.container];
  return (
    v.codec === CODEC_OF[profile.videoCodec] &&
    v.pixFmt === "yuv420p" &&
    target.width === v.displayWidth &&
    target.height === v.displayHeight &&
    (probe.audio === null || probe.audio.codec === CODEC_OF[profile.audioCodec]) &&
    c !== undefined &&
    c.format.test(probe.container) &&
    c.ext.test(file)
  );
}

/**
 * `transcode`: the input re-encoded with a named profile from `transcode.profiles`
 * (`options.profile`, default "web-720p"): scaled down to the profile's maxHeight (never up,
 * aspect kept, even dimensions), H.264/AAC MP4 with +faststart by default; no audio in, no audio
 * out. Progress comes from ffmpeg's `-progress` output and is the liveness signal: no progress
 * for `options.stallTimeoutMs` (default `transcode.stallTimeoutMs`) kills ffmpeg and fails the
 * step (retryable, "stalled"). `options.skipIfMatches: true` copies an input that already has the
 * profile's codecs, size and container. Output: `<outputDir>/<profile>.<container>`, atomic.
 */
export function createTranscodeStep(config: StepsConfig = {}, tuning: TranscodeTuning = {}): Step {
  const { ffmpeg, ffprobe, profiles, stallTimeoutMs: defaultStallMs } = mediaSettings(config);

  const profileOf = (options: Readonly<Record<string, unknown>>): { name: string; profile: TranscodeProfile } => {
    const name = stringOption("transcode", options, "profile") ?? DEFAULT_PROFILE;
    const profile = Object.hasOwn(profiles, name) ? profiles[name] : undefined;
    if (!profile) {
      const known = Object.keys(profiles).map((n) => JSON.stringify(n)).join(", ") || "none configured";
      throw optionError("transcode", "profile", `must name a profile in transcode.profiles (${known})`, name);
    }
    return { name, profile };
  };

  return {
    kind: "transcode",
    validateOptions(options) {
      checkKnown("transcode", options, OPTIONS);
      profileOf(options);
      intOption("transcode", options, "stallTimeoutMs", 100, MAX_TIMER_MS);
      intOption("transcode", options, "timeoutMs", 1, MAX_TIMER_MS);
      boolOption("transcode", options, "skipIfMatches", false);
    },
    async run(input, ctx) {
      const { name, profile } = profileOf(input.options);
      const stallTimeoutMs = intOption("transcode", input.options, "stallTimeoutMs", 100, MAX_TIMER_MS, defaultStallMs);
      const timeoutMs = intOption("transcode", input.options, "timeoutMs", 1, MAX_TIMER_MS);
      const skipIfMatches = boolOption("transcode", input.options, "skipIfMatches", false);
      const fileName = `${name}.${profile.container}`;
      const final = path.join(input.outputDir, fileName);
      cleanStaleTemps(input.outputDir, [fileName]);

      const probe = previousProbe(input.previous) ?? (await probeFile(ffprobe, input.path, { signal: ctx.signal }));
      const video = probe.video;
      if (!video) throw new StepError(`not a video: no video stream in ${input.path}`, { retryable: false });
      const target = scaledSize(video.displayWidth, video.displayHeight, profile.maxHeight);

      if (skipIfMatches && matchesProfile(probe, input.path, profile, target)) {
        const sizeBytes = await writeAtomic(final, async (temp) => {
          // A reflink where the file system can, else a copy: the output never aliases the input.
          await fs.promises.copyFile(input.path, temp, fs.constants.COPYFILE_FICLONE);
          return fs.statSync(temp).size;
        });
        ctx.progress(100);
        return { file: final, profile: name, durationS: probe.durationS, width: target.width, height: target.height, sizeBytes, skipped: true };
      }

      const durationUs = (probe.durationS ?? 0) * 1e6;
      let lastPercent = -1;
      let outTimeUs = 0;
      let truncated = false;
      const args = [
        ...["-nostdin", "-hide_banner", "-v", "error", "-y", "-i", fileArg(input.path)],
        ...["-map", "0:v:0", ...(probe.audio ? ["-map", "0:a:0"] : []), "-sn", "-dn"],
        ...(target.width !== video.displayWidth || target.height !== video.displayHeight ? ["-vf", `scale=${target.width}:${target.height}`] : []),
        ...["-c:v", profile.videoCodec, "-preset", profile.preset, "-crf", String(profile.crf), "-pix_fmt", "yuv420p"],
        ...(profile.videoCodec === "libx265" && profile.container !== "mkv" ? ["-tag:v", "hvc1"] : []),
        ...(probe.audio ? ["-c:a", profile.audioCodec, "-b:a", profile.audioBitrate] : ["-an"]),
        ...(profile.container === "mkv" ? [] : ["-movflags", "+faststart"]),
        ...["-progress", "pipe:1", "-nostats"],
        "-f",
        MUXER_OF[profile.container] ?? "mp4",
      ];

      const sizeBytes = await writeAtomic(final, async (temp) => {
        const result = await runProcess(ffmpeg, [...args, fileArg(temp)], {
          signal: ctx.signal,
          stallTimeoutMs,
          timeoutMs,
          killGraceMs: tuning.killGraceMs ?? KILL_GRACE_MS,
          label: "ffmpeg",
          installHint: FFMPEG_INSTALL_HINT,
          onStderr: (text) => {
            if (text.includes("partial file")) truncated = true;
          },
          onStdoutLine: (line) => {
            const eq = line.indexOf("=");
            if (eq < 0) return;
            const key = line.slice(0, eq);
            if (key === "out_time_us" || key === "out_time_ms") {
              // (out_time_ms is in microseconds too.)
              const us = Number(line.slice(eq + 1));
              if (Number.isFinite(us) && us > outTimeUs) outTimeUs = us;
            } else if (key === "progress" && durationUs > 0) {
              const percent = Math.min(99.9, Math.floor((outTimeUs / durationUs) * 1000) / 10);
              if (percent > lastPercent) {
                lastPercent = percent;
                ctx.progress(percent);
              }
            }
          },
        });
        if (result.code !== 0) {
          const how = result.code === null ? `was killed by ${result.signal ?? "a signal"}` : `exited with code ${result.code}`;
          if (result.code !== null && BAD_INPUT.test(result.stderrTail)) {
            throw new StepError(`not a video: ${input.path}: ${ffmpegReason(result.stderrTail, input.path)}`, { retryable: false });
          }
          throw new StepError(`transcode: ffmpeg ${how}: ${lastLines(result.stderrTail)}`, { retryable: true });
        }
        if (truncated) {
          throw new StepError(`corrupt input: ${input.path} is truncated (ffmpeg: partial file); the output would be incomplete`, { retryable: false });
        }
        return fs.statSync(temp).size;
      });
      ctx.progress(100);
      const durationS = outTimeUs > 0 ? Math.round(outTimeUs / 1000) / 1000 : probe.durationS;
      return { file: final, profile: name, durationS, width: target.width, height: target.height, sizeBytes };
    },
  };
}
