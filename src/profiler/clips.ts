/** Real video clips for pipeline runs, made with ffmpeg's lavfi test sources (no files needed). */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface ClipSpec {
  readonly seconds: number;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
}

export const PROFILE_CLIP: ClipSpec = { seconds: 2, width: 640, height: 360, fps: 25 };

/** Makes `count` distinct H.264 + AAC MP4 clips in `dir` and returns their paths. */
export async function makeClips(ffmpeg: string, dir: string, count: number, spec: ClipSpec = PROFILE_CLIP, signal?: AbortSignal): Promise<string[]> {
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const out = join(dir, `profile-clip-${String(i + 1).padStart(3, "0")}.mp4`);
    const { seconds, width, height, fps } = spec;
    const args = [
      ...["-nostdin", "-hide_banner", "-v", "error", "-y"],
      ...["-f", "lavfi", "-i", `testsrc2=size=${width}x${height}:rate=${fps}:duration=${seconds}`],
      ...["-f", "lavfi", "-i", `sine=frequency=${220 + 55 * i}:sample_rate=48000:duration=${seconds}`],
      ...["-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", String(fps)],
      ...["-c:a", "aac", "-b:a", "96k", "-ac", "2", "-t", String(seconds), out],
    ];
    try {
      await run(ffmpeg, args, { signal, timeout: 60_000 });
    } catch (err) {
      throw new Error(`could not make a test clip with ${ffmpeg}: ${(err as Error).message.split("\n")[0]}`);
    }
    paths.push(out);
  }
  return paths;
}
