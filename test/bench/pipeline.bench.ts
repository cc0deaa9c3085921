/**
 * pipeline group: 100 real clips through probe -> thumbnail -> transcode (web-720p), ours against
 * the same ffmpeg/ffprobe commands run by `xargs -P3`, side by side in one run.
 *
 * Ours: one `vqd start` for the whole group, a child process with the production node flags
 * (SQLite file, production pragmas) on the harness nats-server, 3 workers, the built-in default
 * pipeline. Each rep's paths go in with one `<prefix>.api.enqueue` request from a separate NATS
 * connection; the clock runs from that request until the rep's last VideoCompleted on
 * `<prefix>.events.VideoCompleted`.
 *
 * Baseline: one small shell script per clip running exactly the argument lists our steps run
 * (see src/pipeline/media.ts probeFile, steps/thumbnail.ts and steps/transcode.ts), fed to
 * `xargs -P3 -n1 setsid sh`; the clock covers the whole xargs run. What the baseline leaves out is our
 * overhead: the record (SQLite), the queue (JetStream), the spawn helper, temp file + fsync + rename.
 *
 * The clips are one generated 2 s testsrc+sine clip copied N times (distinct files, same bytes),
 * so every job does the same work; the outputs of both sides are checked to be byte-identical
 * in size, which they are only when the commands are the same.
 */
import { equal } from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ApiClient, type EnqueueResultJson } from "../../src/api/index.js";
import { subjects as makeSubjects } from "../../src/bus/index.js";
import type { Config } from "../../src/config/index.js";
import { BUILTIN_PROFILES } from "../../src/config/schema.js";
import { even, fileArg, probeFile, scaledSize, type ProbeOutputs } from "../../src/pipeline/media.js";
import { DAEMON_NODE_FLAGS } from "../../src/shared/node-flags.js";
import { cleanupClips, makeClip } from "../support/clips.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { makeVqdEnv, type DaemonProcess, type VqdEnv } from "../support/vqd-env.js";
import { alternate, median, procCpu, tempDir, watchCompletions, within } from "./measure.js";
import type { BenchContext, BenchGroup, BenchResult, Figure } from "./types.js";

/** The reference app's "concurrent processing" figure: 100 simulated videos in 2.177 s. */
const REFERENCE_WALL_S = 2.177;
const GOAL = { kind: "ratio-max", value: 1.05 } as const;
const PROFILE = "web-720p";

export interface Plan {
  readonly clips: number;
  readonly reps: number;
  readonly seconds: number;
  readonly width: number;
  readonly height: number;
  readonly timeoutMs: number;
}

export const FULL: Plan = { clips: 100, reps: 5, seconds: 2, width: 320, height: 240, timeoutMs: 600_000 };
const QUICK: Plan = { clips: 12, reps: 1, seconds: 2, width: 320, height: 240, timeoutMs: 120_000 };

export interface RunResult {
  readonly wallS: number;
  /** CPU seconds in the timed window: the daemon and its spawn helper (ours) or this process (xargs), the programs they reaped, nats-server. */
  readonly cpu: { readonly own: number; readonly children: number; readonly server: number };
  /** Output file sizes by clip index: [thumbnail, transcode]. */
  readonly sizes: readonly (readonly [number, number])[];
}

// ---------------------------------------------------------------- CPU accounting

/** A process and its live descendants (from /proc/<pid>/task/<tid>/children). */
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const tid of readdirSync(`/proc/${out[i]}/task`)) {
        const kids = readFileSync(`/proc/${out[i]}/task/${tid}/children`, "utf8").trim();
        if (kids) for (const k of kids.split(" ")) out.push(Number(k));
      }
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/**
 * Starts CPU accounting; the function returned gives the CPU seconds used since, of `daemonPid`
 * with its live descendants (its spawn helper), or of this process alone when absent: their own
 * ("own") and that of the programs they have reaped ("children"); and of nats-server.
 */
function cpuMeter(serverPid: number, daemonPid?: number): () => RunResult["cpu"] {
  const tree = (): { own: number; children: number } => {
    if (daemonPid === undefined) return procCpu("self");
    return processTree(daemonPid)
      .map((p) => procCpu(p))
      .filter((c) => !Number.isNaN(c.own))
      .reduce((a, c) => ({ own: a.own + c.own, children: a.children + c.children }), { own: 0, children: 0 });
  };
  const self0 = tree();
  const server0 = procCpu(serverPid).own;
  return () => {
    const self = tree();
    return { own: self.own - self0.own, children: self.children - self0.children, server: procCpu(serverPid).own - server0 };
  };
}

const cpuTotal = (c: RunResult["cpu"]): number => c.own + c.children + c.server;

// ---------------------------------------------------------------- the baseline's commands

/** Mirrors probeFile (src/pipeline/media.ts). */
export function probeArgs(input: string): string[] {
  return ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", fileArg(input)];
}

/** Mirrors the thumbnail step with its defaults (at 10%, width 320, quality 3). */
export function thumbnailArgs(input: string, probe: ProbeOutputs, output: string): string[] {
  const video = probe.video;
  if (!video) throw new Error("no video stream");
  const width = 320;
  const duration = probe.durationS ?? 0;
  let atS = (duration * 10) / 100;
  const lastFrame = Math.max(0, duration - 1 / (video.fps ?? 10));
  if (duration > 0) atS = Math.min(atS, lastFrame);
  atS = Math.round(atS * 1000) / 1000;
  const height = even((width * video.displayHeight) / video.displayWidth);
  return [
    ...["-nostdin", "-hide_banner", "-v", "error", "-y"],
    ...["-ss", String(atS), "-i", fileArg(input)],
    ...["-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn"],
    ...["-vf", `scale=${width}:${height}`, "-c:v", "mjpeg", "-q:v", "3"],
    ...["-f", "image2", "-update", "1", fileArg(output)],
  ];
}

/** Mirrors the transcode step (profile web-720p, no skipIfMatches). */
export function transcodeArgs(input: string, probe: ProbeOutputs, output: string): string[] {
  const profile = BUILTIN_PROFILES[PROFILE];
  const video = probe.video;
  if (!profile || !video) throw new Error("no profile or no video stream");
  const target = scaledSize(video.displayWidth, video.displayHeight, profile.maxHeight);
  return [
    ...["-nostdin", "-hide_banner", "-v", "error", "-y", "-i", fileArg(input)],
    ...["-map", "0:v:0", ...(probe.audio ? ["-map", "0:a:0"] : []), "-sn", "-dn"],
    ...(target.width !== video.displayWidth || target.height !== video.displayHeight ? ["-vf", `scale=${target.width}:${target.height}`] : []),
    ...["-c:v", profile.videoCodec, "-preset", profile.preset, "-crf", String(profile.crf), "-pix_fmt", "yuv420p"],
    ...(probe.audio ? ["-c:a", profile.audioCodec, "-b:a", profile.audioBitrate] : ["-an"]),
    "-movflags",
    "+faststart",
    ...["-progress", "pipe:1", "-nostats"],
    ...["-f", "mp4", fileArg(output)],
  ];
}

const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const line = (program: string, args: readonly string[], redirect = ""): string => [program, ...args].map(sq).join(" ") + redirect;

/** One script per clip: probe, thumbnail, transcode (what ours reads from stdout goes to /dev/null). */
function writeScripts(dir: string, clips: readonly string[], probe: ProbeOutputs, outRoot: string): string[] {
  mkdirSync(dir, { recursive: true });
  return clips.map((clip, i) => {
    const out = join(outRoot, String(i));
    const script = join(dir, `clip-${i}.sh`);
    writeFileSync(
      script,
      [
        "set -e",
        line("ffprobe", probeArgs(clip), " > /dev/null"),
        `mkdir -p ${sq(out)}`,
        line("ffmpeg", thumbnailArgs(clip, probe, join(out, "thumbnail.jpg"))),
        line("ffmpeg", transcodeArgs(clip, probe, join(out, `${PROFILE}.mp4`)), " > /dev/null"),
        "",
      ].join("\n"),
    );
    return script;
  });
}

export async function xargsOnce(srv: TestNatsServer, plan: Plan, clips: readonly string[], probe: ProbeOutputs): Promise<RunResult> {
  const work = tempDir("vqd-bench-xargs-");
  try {
    const outRoot = join(work.path, "out");
    const scripts = writeScripts(join(work.path, "scripts"), clips, probe, outRoot);
    const cpu = cpuMeter(srv.pid);
    const start = performance.now();
    await new Promise<void>((resolve, reject) => {
      // setsid: our workers start each child in a session of its own (detached, for the process-group
      // kill); with Linux autogroup scheduling a session is also a CPU share, which the baseline gets too.
      const child = spawn("xargs", ["-P3", "-n1", "setsid", "sh"], { stdio: ["pipe", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), plan.timeoutMs);
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`xargs exited ${code}: ${stderr.slice(-2000)}`));
      });
      child.stdin.end(scripts.join("\n") + "\n");
    });
    const wallS = (performance.now() - start) / 1000;
    const used = cpu();
    const sizes = clips.map((_, i) => {
      const out = join(outRoot, String(i));
      return [statSync(join(out, "thumbnail.jpg")).size, statSync(join(out, `${PROFILE}.mp4`)).size] as const;
    });
    return { wallS, cpu: used, sizes };
  } finally {
    work.remove();
  }
}

// ---------------------------------------------------------------- ours

let runCounter = 0;

/**
 * Ours as it runs in production: one long-lived `vqd start`, its own process, with the node flags
 * of the systemd unit and `npm start`. (In-process, the daemon would share the bench's heap:
 * every fork of an ffmpeg child copies the page tables of the whole process, ~3-13 ms each at
 * 80-160 MB, so the bench's own memory would be charged to the daemon.)
 *
 * The same daemon takes the warm-up batch and every rep, as a service takes batch after batch. A
 * daemon started per rep ran every rep with cold code: its first enqueue, first job and first
 * steps were compiled inside the timed window, ~0.15-0.2 s in which the cores had nothing else
 * to do, before the first ffprobe started (the baseline's warm-up warms all it has: the page cache).
 */
export class OursDaemon {
  readonly config: Config;
  readonly #env: VqdEnv;
  readonly #daemon: DaemonProcess;
  readonly #nc: NatsConnection;
  readonly #srv: TestNatsServer;

  private constructor(config: Config, env: VqdEnv, daemon: DaemonProcess, nc: NatsConnection, srv: TestNatsServer) {
    this.config = config;
    this.#env = env;
    this.#daemon = daemon;
    this.#nc = nc;
    this.#srv = srv;
  }

  /** `extra`: more VQD_* variables, for what-if runs (the group itself uses none). */
  static async start(srv: TestNatsServer, clipRoot: string, extra: Record<string, string> = {}): Promise<OursDaemon> {
    const env = await makeVqdEnv({
      natsUrl: srv.url,
      prefix: `vqbench${process.pid}p${++runCounter}`,
      extra: {
        VQD_ALLOWEDROOTS: `[${clipRoot}]`,
        VQD_WORKERS__COUNT: "3",
        VQD_DEFAULTPIPELINE: "default",
        VQD_DATABASE__SYNCHRONOUS: "normal",
        VQD_TELEMETRY__ENABLED: "false",
        VQD_LOGGING__LEVEL: "info",
        ...extra,
      },
    });
    let nc: NatsConnection | undefined;
    try {
      const config = env.config();
      equal(config.workers.count, 3);
      const daemon = env.spawnDaemon(["start"], { nodeFlags: DAEMON_NODE_FLAGS });
      await daemon.ready(30_000);
      nc = await connect({ servers: srv.url, name: "vqd-bench-pipeline" });
      return new OursDaemon(config, env, daemon, nc, srv);
    } catch (err) {
      await nc?.close();
      // cleanup() kills a daemon still running.
      await env.cleanup();
      throw err;
    }
  }

  /** One batch: all `clips` in one `<prefix>.api.enqueue` request; the clock stops at the last VideoCompleted. */
  async run(plan: Plan, clips: readonly string[]): Promise<RunResult> {
    const subj = makeSubjects(this.config.nats.subjectPrefix);
    const api = new ApiClient(this.#nc, subj, 60_000);
    const before = await api.call<"status", { states: Record<string, number> }>("status", {});
    const completed = await watchCompletions(this.#nc, subj, clips.length);
    try {
      const cpu = cpuMeter(this.#srv.pid, this.#daemon.child.pid as number);
      const start = performance.now();
      const results = await api.call<"enqueue", EnqueueResultJson[]>("enqueue", { paths: [...clips], pipeline: "default" });
      const ids = results.map((r) => {
        if (!("id" in r)) throw new Error(`enqueue refused: ${r.error}`);
        return r.id;
      });
      await within(completed.done, plan.timeoutMs, async () => {
        const status = await api.call<"status", { states: unknown }>("status", {});
        return `${JSON.stringify(status.states)}\n${this.#daemon.output().slice(-2000)}`;
      });
      const wallS = (completed.lastAt() - start) / 1000;
      const used = cpu();

      const status = await api.call<"status", { states: Record<string, number> }>("status", {});
      equal((status.states.completed ?? 0) - (before.states.completed ?? 0), clips.length, "videos completed in the store by this batch");
      const sizes = ids.map((id) => {
        const out = join(this.config.outputDir, id);
        const names = readdirSync(out).sort();
        if (names.join(",") !== `thumbnail.jpg,${PROFILE}.mp4`) throw new Error(`unexpected outputs for ${id}: ${names.join(", ")}`);
        return [statSync(join(out, "thumbnail.jpg")).size, statSync(join(out, `${PROFILE}.mp4`)).size] as const;
      });
      // The next batch starts with an empty output folder, as this one did.
      for (const id of ids) rmSync(join(this.config.outputDir, id), { recursive: true, force: true });
      return { wallS, cpu: used, sizes };
    } finally {
      completed.stop();
    }
  }

  /** SIGTERM; the daemon must exit 0. Removes its data folder either way. */
  async stop(): Promise<void> {
    try {
      this.#daemon.child.kill("SIGTERM");
      const code = await this.#daemon.exited();
      if (code !== 0) throw new Error(`vqd start exited ${code}:\n${this.#daemon.output().slice(-2000)}`);
    } finally {
      await this.#nc.close();
      await this.#env.cleanup();
    }
  }
}

// ---------------------------------------------------------------- the group

/** Generates the clip once and copies it `n` times into a fresh folder. */
export async function prepareClips(plan: Plan, dir: string): Promise<{ clips: string[]; probe: ProbeOutputs }> {
  const source = await makeClip({ seconds: plan.seconds, width: plan.width, height: plan.height, name: `bench-${plan.width}x${plan.height}-${plan.seconds}s.mp4` });
  const clips = Array.from({ length: plan.clips }, (_, i) => {
    const p = join(dir, `clip-${String(i).padStart(4, "0")}.mp4`);
    copyFileSync(source, p);
    return p;
  });
  const probe = await probeFile("ffprobe", source);
  return { clips, probe };
}

function describeCpu(c: RunResult["cpu"]): string {
  return `CPU ${cpuTotal(c).toFixed(2)} s: children ${c.children.toFixed(2)} s, own ${c.own.toFixed(2)} s, nats-server ${c.server.toFixed(2)} s`;
}

function sameSizes(a: RunResult, b: RunResult): boolean {
  return a.sizes.length === b.sizes.length && a.sizes.every((s, i) => s[0] === b.sizes[i]?.[0] && s[1] === b.sizes[i]?.[1]);
}

async function run(ctx: BenchContext): Promise<BenchResult> {
  const plan = ctx.quick ? QUICK : FULL;
  const srv = await startNatsServer();
  const dir = tempDir("vqd-bench-clips-");
  let daemon: OursDaemon | undefined;
  try {
    const { clips, probe } = await prepareClips(plan, dir.path);
    ctx.log(`pipeline: ${clips.length} clips of ${plan.seconds} s ${plan.width}x${plan.height}, ${plan.reps} alternating reps`);
    // Untimed warm-up of both sides (binaries and libraries in the page cache; the daemon's code compiled, its NATS stream made).
    const warm = clips.slice(0, Math.min(9, clips.length));
    daemon = await OursDaemon.start(srv, dir.path);
    await daemon.run(plan, warm);
    await xargsOnce(srv, plan, warm, probe);
    const ours: RunResult[] = [];
    const base: RunResult[] = [];
    const d = daemon;
    await alternate(
      plan.reps,
      async (rep) => {
        const r = await d.run(plan, clips);
        ctx.log(`pipeline: ours  rep ${rep + 1}: ${r.wallS.toFixed(2)} s (${describeCpu(r.cpu)})`);
        ours.push(r);
        return r.wallS;
      },
      async (rep) => {
        const r = await xargsOnce(srv, plan, clips, probe);
        ctx.log(`pipeline: xargs rep ${rep + 1}: ${r.wallS.toFixed(2)} s (${describeCpu(r.cpu)})`);
        base.push(r);
        return r.wallS;
      },
    );
    // Stopped here, so that a daemon that does not exit 0 fails the group; the finally only
    // cleans up after a run that already failed.
    await d.stop();
    daemon = undefined;
    const first = ours[0];
    const same = first !== undefined && [...ours, ...base].every((r) => sameSizes(first, r));
    if (!same) throw new Error("ours and xargs produced outputs of different sizes: the commands differ");
    const oursWall = median(ours.map((r) => r.wallS));
    const baseWall = median(base.map((r) => r.wallS));
    const figures: Figure[] = [
      {
        key: "pipeline.wall_s",
        label: `${plan.clips} clips, probe+thumbnail+transcode, 3 workers, wall time`,
        value: oursWall,
        unit: "s",
        baselineKey: "pipeline.xargs_wall_s",
        goal: GOAL,
        reference: REFERENCE_WALL_S,
      },
      { key: "pipeline.xargs_wall_s", value: baseWall, unit: "s" },
      { key: "pipeline.videos_s", label: "videos per second (ours)", value: plan.clips / oursWall, unit: "videos/s", baselineKey: "pipeline.xargs_videos_s" },
      { key: "pipeline.xargs_videos_s", value: plan.clips / baseWall, unit: "videos/s" },
      {
        key: "pipeline.cpu_s",
        label: "CPU, all processes of the run (less sensitive to other load than wall time)",
        value: median(ours.map((r) => cpuTotal(r.cpu))),
        unit: "s",
        baselineKey: "pipeline.xargs_cpu_s",
      },
      { key: "pipeline.xargs_cpu_s", value: median(base.map((r) => cpuTotal(r.cpu))), unit: "s" },
    ];
    const cpuOf = (xs: readonly RunResult[], k: keyof RunResult["cpu"]): string => median(xs.map((r) => r.cpu[k])).toFixed(2);
    const fmt = (xs: readonly RunResult[]): string => xs.map((r) => r.wallS.toFixed(2)).join(", ");
    // Rep k of each side ran next to each other: how far apart single pairs land shows the noise.
    const pairs = ours.map((r, i) => (r.wallS / (base[i]?.wallS ?? Number.NaN)).toFixed(2)).join(", ");
    return {
      figures,
      notes: [
        `ours: one \`vqd start\` for the warm-up and all reps, as its own process (node ${DAEMON_NODE_FLAGS.join(" ")}), SQLite file (WAL, synchronous=NORMAL), harness nats-server, built-in default pipeline (probe, thumbnail, transcode ${PROFILE}), workers.count=3; ` +
          `one enqueue request of ${plan.clips} paths; clock stops at the last VideoCompleted`,
        `xargs: one sh script per clip with the same ffprobe/ffmpeg argument lists, xargs -P3 -n1 setsid sh (a session per script, as ours gives each child one: equal CPU share under autogroup scheduling); outputs checked equal in size to ours`,
        `clips: ${plan.seconds} s testsrc+sine, ${plan.width}x${plan.height} 25 fps H.264/AAC, one clip copied ${plan.clips} times`,
        `median of ${plan.reps} alternating reps after a 9-clip warm-up of each side; ours ${fmt(ours)} s; xargs ${fmt(base)} s; ours/xargs by pair ${pairs}`,
        `CPU (medians, from /proc/<pid>/stat): ours ${cpuOf(ours, "children")} s ffmpeg/ffprobe + ${cpuOf(ours, "own")} s vqd (node and its spawn helper) + ${cpuOf(ours, "server")} s nats-server; ` +
          `xargs ${cpuOf(base, "children")} s (xargs, sh and the same ffmpeg/ffprobe)`,
        `reference app: 100 videos in ${REFERENCE_WALL_S} s, simulated (no media work)`,
      ],
    };
  } finally {
    // (Its own error would hide the one that brought us here.)
    await daemon?.stop().catch(() => {});
    dir.remove();
    cleanupClips();
    await srv.stop();
  }
}

export const pipelineGroup: BenchGroup = {
  name: "pipeline",
  description: "100 real clips through probe+thumbnail+transcode, 3 workers: vqd vs the same commands via xargs -P3",
  run,
};
