/**
 * ffprobe and the helpers the media steps share: the probe result, reading it from an earlier
 * step, display dimensions of rotated video, and the "not found" hint for the binaries.
 */
import fs from "node:fs";
import { StepError } from "./errors.js";
import { lastLines, runProcess } from "./process.js";
import type { StepOutputs } from "../domain/index.js";

export const FFMPEG_INSTALL_HINT = "install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg) or set transcode.ffmpeg / transcode.ffprobe to the binary's path";

export type VideoInfo = {
  codec: string;
  /** Coded (stored) size; see displayWidth/displayHeight for rotated video. */
  width: number;
  height: number;
  /** Size as shown, after `rotation`. */
  displayWidth: number;
  displayHeight: number;
  fps: number | null;
  bitRate: number | null;
  pixFmt: string | null;
  /** Clockwise degrees a player turns the picture: 0, 90, 180 or 270. */
  rotation: number;
};

export type AudioInfo = {
  codec: string;
  channels: number;
  sampleRate: number;
  bitRate: number | null;
};

export type ProbeOutputs = {
  durationS: number | null;
  /** ffprobe's format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2". */
  container: string;
  sizeBytes: number;
  bitRate: number | null;
  video: VideoInfo | null;
  audio: AudioInfo | null;
  streams: number;
};

interface FfprobeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  bit_rate?: string;
  pix_fmt?: string;
  channels?: number;
  sample_rate?: string;
  duration?: string;
  disposition?: { attached_pic?: number };
  tags?: Record<string, string>;
  side_data_list?: { side_data_type?: string; rotation?: number }[];
}

interface FfprobeOutput {
  streams?: FfprobeStream[];
  format?: { format_name?: string; duration?: string; size?: string; bit_rate?: string; nb_streams?: number };
}

/** A path given to ffmpeg/ffprobe as a file, never as a protocol URL or an option. */
export const fileArg = (p: string): string => `file:${p}`;

const num = (s: string | number | undefined): number | null => {
  if (s === undefined || s === "N/A") return null;
  const n = typeof s === "number" ? s : Number(s);
  return Number.isFinite(n) ? n : null;
};

const int = (s: string | number | undefined): number | null => {
  const n = num(s);
  return n === null ? null : Math.round(n);
};

function rate(s: string | undefined): number | null {
  if (!s) return null;
  const [a, b] = s.split("/");
  const n = Number(a);
  const d = b === undefined ? 1 : Number(b);
  if (!Number.isFinite(n) || !Number.isFinite(d) || d === 0 || n === 0) return null;
  return Math.round((n / d) * 1000) / 1000;
}

const normDegrees = (d: number): number => ((Math.round(d / 90) * 90) % 360 + 360) % 360;

function rotationOf(s: FfprobeStream): number {
  for (const side of s.side_data_list ?? []) {
    // The display matrix rotation is counter-clockwise; report the clockwise turn, like the old `rotate` tag.
    if (typeof side.rotation === "number" && Number.isFinite(side.rotation)) return normDegrees(-side.rotation);
  }
  const tag = num(s.tags?.rotate);
  return tag === null ? 0 : normDegrees(tag);
}

/** Why ffprobe could not read a file, without its "[mov,mp4 @ 0x...]" prefixes and the path. */
export function ffmpegReason(stderr: string, path: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.replace(/^\[[^\]]*@ 0x[0-9a-f]+\]\s*/, "").trim())
    .map((l) => (l.startsWith(`file:${path}: `) ? l.slice(path.length + 7) : l.startsWith(`${path}: `) ? l.slice(path.length + 2) : l))
    .filter((l) => l !== "");
  return [...new Set(lines)].slice(-3).join("; ") || "unreadable";
}

/** Throws a non-retryable StepError unless `path` is an existing readable regular file. */
export async function assertInputFile(path: string): Promise<fs.Stats> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(path);
    await fs.promises.access(path, fs.constants.R_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" || code === "EPERM" ? "permission denied" : (e as Error).message;
    throw new StepError(`cannot read input ${path}: ${why}`, { retryable: code !== "ENOENT" && code !== "EACCES" && code !== "EPERM" && code !== "ENOTDIR", cause: e });
  }
  if (!st.isFile()) throw new StepError(`not a video: ${path}: not a regular file`, { retryable: false });
  return st;
}

/** Runs ffprobe on `path`; a file it cannot read, or without a video stream, is a non-retryable "not a video". */
export async function probeFile(
  ffprobe: string,
  path: string,
  opts: { signal?: AbortSignal; timeoutMs?: number; requireVideo?: boolean } = {},
): Promise<ProbeOutputs> {
  const st = await assertInputFile(path);
  const result = await runProcess(ffprobe, ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", fileArg(path)], {
    signal: opts.signal,
    timeoutMs: opts.timeoutMs ?? 60_000,
    stdoutBytes: 16 * 1024 * 1024,
    label: "ffprobe",
    installHint: FFMPEG_INSTALL_HINT,
  });
  if (result.code !== 0) {
    if (result.code === null) {
      throw new StepError(`ffprobe was killed by ${result.signal ?? "a signal"}: ${lastLines(result.stderrTail)}`, { retryable: true });
    }
    throw new StepError(`not a video: ${path}: ${ffmpegReason(result.stderrTail, path)}`, { retryable: false });
  }
  let parsed: FfprobeOutput;
  try {
    parsed = JSON.parse(result.stdout) as FfprobeOutput;
  } catch (e) {
    throw new StepError(`not a video: ${path}: ffprobe printed no readable description`, { retryable: false, cause: e });
  }
  const out = fromFfprobe(parsed, st.size);
  if (opts.requireVideo !== false) {
    if (!out.video) throw new StepError(`not a video: no video stream in ${path}`, { retryable: false });
    if ((out.durationS === null || out.durationS === 0) && /(^|,)image2($|,)|_pipe$/.test(out.container)) {
      throw new StepError(`not a video: ${path}: a still image (${out.container})`, { retryable: false });
    }
  }
  return out;
}

export function fromFfprobe(p: FfprobeOutput, statSize: number): ProbeOutputs {
  const streams = p.streams ?? [];
  const v = streams.find((s) => s.codec_type === "video" && s.disposition?.attached_pic !== 1);
  const a = streams.find((s) => s.codec_type === "audio");
  let durationS = num(p.format?.duration);
  if (durationS === null) {
    const ds = streams.map((s) => num(s.duration)).filter((d): d is number => d !== null);
    durationS = ds.length > 0 ? Math.max(...ds) : null;
  }
  let video: VideoInfo | null = null;
  if (v && typeof v.width === "number" && typeof v.height === "number") {
    const rotation = rotationOf(v);
    const swap = rotation === 90 || rotation === 270;
    video = {
      codec: v.codec_name ?? "unknown",
      width: v.width,
      height: v.height,
      displayWidth: swap ? v.height : v.width,
      displayHeight: swap ? v.width : v.height,
      fps: rate(v.avg_frame_rate) ?? rate(v.r_frame_rate),
      bitRate: int(v.bit_rate),
      pixFmt: v.pix_fmt ?? null,
      rotation,
    };
  }
  const audio: AudioInfo | null = a
    ? { codec: a.codec_name ?? "unknown", channels: a.channels ?? 0, sampleRate: int(a.sample_rate) ?? 0, bitRate: int(a.bit_rate) }
    : null;
  return {
    durationS,
    container: p.format?.format_name ?? "unknown",
    sizeBytes: int(p.format?.size) ?? statSize,
    bitRate: int(p.format?.bit_rate),
    video,
    audio,
    streams: p.format?.nb_streams ?? streams.length,
  };
}

function isProbeOutputs(o: unknown): o is ProbeOutputs {
  if (o === null || typeof o !== "object") return false;
  const r = o as Record<string, unknown>;
  const v = r.video as Record<string, unknown> | null | undefined;
  return (
    typeof r.container === "string" &&
    (r.durationS === null || typeof r.durationS === "number") &&
    (v === null || (typeof v === "object" && v !== undefined && typeof v.width === "number" && typeof v.height === "number" && typeof v.displayWidth === "number" && typeof v.displayHeight === "number")) &&
    (r.audio === null || (typeof r.audio === "object" && r.audio !== undefined))
  );
}

/** The probe result of an earlier step of this pipeline (`probe`, or any step with its shape). */
export function previousProbe(previous: Readonly<Record<string, StepOutputs>>): ProbeOutputs | undefined {
  if (isProbeOutputs(previous.probe)) return previous.probe;
  for (const value of Object.values(previous)) if (isProbeOutputs(value)) return value;
  return undefined;
}

/** Rounds to an even integer >= 2 (what H.264 in 4:2:0 and most players want). */
export const even = (n: number): number => Math.max(2, Math.round(n / 2) * 2);

/** Output size for a display size scaled to `maxHeight` (0 = keep), never up, even. */
export function scaledSize(width: number, height: number, maxHeight: number): { width: number; height: number } {
  if (maxHeight > 0 && height > maxHeight) {
    const h = Math.max(2, Math.floor(maxHeight / 2) * 2);
    return { width: even((width * h) / height), height: h };
  }
  return { width: Math.max(2, Math.floor(width / 2) * 2), height: Math.max(2, Math.floor(height / 2) * 2) };
}
