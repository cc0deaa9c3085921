/**
 * Small real video clips for tests, made with ffmpeg's lavfi test sources (testsrc + sine) into a
 * temporary directory. Rotation is written straight into the MP4's track header matrix, so the
 * result does not depend on how the installed ffmpeg treats rotate metadata.
 */
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface ClipOptions {
  /** Length in seconds (default 2). */
  readonly seconds?: number;
  readonly width?: number;
  readonly height?: number;
  readonly fps?: number;
  /** A stereo 48 kHz AAC track (default true). */
  readonly audio?: boolean;
  /** Clockwise display rotation: 90, 180 or 270. */
  readonly rotate?: 0 | 90 | 180 | 270;
  /** Index at the front (default false: the moov box at the end, as ffmpeg writes by default). */
  readonly faststart?: boolean;
  /** File name inside the clip directory (default: derived from the options). */
  readonly name?: string;
}

let clipDir: string | undefined;

/** The temporary directory clips go to (created on first use). */
export function clipsDir(): string {
  clipDir ??= fs.mkdtempSync(path.join(os.tmpdir(), "vqd-clips-"));
  return clipDir;
}

/** Removes every clip made by this process. */
export function cleanupClips(): void {
  if (clipDir) fs.rmSync(clipDir, { recursive: true, force: true });
  clipDir = undefined;
}

/** Makes an H.264 (+AAC) MP4 test clip and returns its absolute path. */
export async function makeClip(options: ClipOptions = {}): Promise<string> {
  const { seconds = 2, width = 320, height = 240, fps = 25, audio = true, rotate = 0, faststart = false } = options;
  const name = options.name ?? `clip-${seconds}s-${width}x${height}-${fps}fps-${audio ? "av" : "v"}-r${rotate}${faststart ? "-fs" : ""}.mp4`;
  const out = path.join(clipsDir(), name);
  const args = [
    ...["-nostdin", "-hide_banner", "-v", "error", "-y"],
    ...["-f", "lavfi", "-i", `testsrc=size=${width}x${height}:rate=${fps}:duration=${seconds}`],
    ...(audio ? ["-f", "lavfi", "-i", `sine=frequency=440:sample_rate=48000:duration=${seconds}`] : []),
    ...["-map", "0:v", ...(audio ? ["-map", "1:a"] : [])],
    ...["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", String(fps)],
    ...(audio ? ["-c:a", "aac", "-b:a", "64k", "-ac", "2"] : []),
    ...(faststart ? ["-movflags", "+faststart"] : []),
    ...["-t", String(seconds), out],
  ];
  await run("ffmpeg", args);
  if (rotate !== 0) setRotation(out, rotate, width, height);
  return out;
}

/** A file of random bytes with a video file name. */
export function makeCorrupt(name = "corrupt.mp4", bytes = 64 * 1024): string {
  const out = path.join(clipsDir(), name);
  fs.writeFileSync(out, randomBytes(bytes));
  return out;
}

/** The first `fraction` of `source`, as a new file. */
export function makeTruncated(source: string, name: string, fraction = 0.5): string {
  const data = fs.readFileSync(source);
  const out = path.join(clipsDir(), name);
  fs.writeFileSync(out, data.subarray(0, Math.floor(data.length * fraction)));
  return out;
}

/** An audio-only M4A (no video stream). */
export async function makeAudioOnly(seconds = 1): Promise<string> {
  const out = path.join(clipsDir(), `audio-${seconds}s.m4a`);
  await run("ffmpeg", ["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", `sine=frequency=440:sample_rate=48000:duration=${seconds}`, "-c:a", "aac", out]);
  return out;
}

export interface FfprobeJson {
  streams: Record<string, unknown>[];
  format: Record<string, unknown>;
}

/** ffprobe's JSON description of a file (independent of the probe step, for checking outputs). */
export function ffprobeJson(file: string): FfprobeJson {
  const text = execFileSync("ffprobe", ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", file], { encoding: "utf8" });
  return JSON.parse(text) as FfprobeJson;
}

// ---------------------------------------------------------------------------------------------
// Writing a rotation into the video track's tkhd matrix
// ---------------------------------------------------------------------------------------------

interface Box {
  type: string;
  start: number;
  /** Where the payload starts. */
  body: number;
  end: number;
}

function boxes(buf: Buffer, start: number, end: number): Box[] {
  const out: Box[] = [];
  let at = start;
  while (at + 8 <= end) {
    let size = buf.readUInt32BE(at);
    const type = buf.toString("latin1", at + 4, at + 8);
    let body = at + 8;
    if (size === 1) {
      size = Number(buf.readBigUInt64BE(at + 8));
      body = at + 16;
    } else if (size === 0) {
      size = end - at;
    }
    if (size < 8 || at + size > end) break;
    out.push({ type, start: at, body, end: at + size });
    at += size;
  }
  return out;
}

const child = (buf: Buffer, parent: Box, type: string): Box | undefined => boxes(buf, parent.body, parent.end).find((b) => b.type === type);

function setRotation(file: string, clockwise: 90 | 180 | 270, width: number, height: number): void {
  const buf = fs.readFileSync(file);
  const moov = boxes(buf, 0, buf.length).find((b) => b.type === "moov");
  if (!moov) throw new Error(`no moov box in ${file}`);
  for (const trak of boxes(buf, moov.body, moov.end).filter((b) => b.type === "trak")) {
    const mdia = child(buf, trak, "mdia");
    const hdlr = mdia && child(buf, mdia, "hdlr");
    if (!hdlr || buf.toString("latin1", hdlr.body + 8, hdlr.body + 12) !== "vide") continue;
    const tkhd = child(buf, trak, "tkhd");
    if (!tkhd) throw new Error("no tkhd box");
    const version = buf.readUInt8(tkhd.body);
    const matrixAt = tkhd.body + 4 + (version === 1 ? 32 : 20) + 16;
    const one = 0x10000;
    // [a b u; c d v; x y w]: x' = a*x + c*y + tx, y' = b*x + d*y + ty (16.16 fixed point; u, v, w 2.30).
    const m: Record<number, [number, number, number, number, number, number]> = {
      90: [0, one, -one, 0, height * one, 0],
      180: [-one, 0, 0, -one, width * one, height * one],
      270: [0, -one, one, 0, 0, width * one],
    };
    const [a, b, c, d, tx, ty] = m[clockwise] as [number, number, number, number, number, number];
    const values = [a, b, 0, c, d, 0, tx, ty, 0x40000000];
    values.forEach((v, i) => buf.writeInt32BE(v, matrixAt + i * 4));
    fs.writeFileSync(file, buf);
    return;
  }
  throw new Error(`no video track in ${file}`);
}
