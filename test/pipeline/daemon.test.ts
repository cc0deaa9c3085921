/**
 * The media pipeline run by the daemon itself (`vqd start` as a child process, a real nats-server,
 * real ffmpeg/ffprobe on clips generated here): outputs and `vqd show`, corrupt input
 * dead-lettered without retries, cancel killing ffmpeg, a hung ffmpeg killed and retried, progress
 * ticks, and `kill -9` of the daemon in the middle of a transcode.
 *
 * The record is read from the SQLite file itself (read-only); processes from /proc.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import BetterSqlite3 from "better-sqlite3";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { subjects as makeSubjects } from "../../src/bus/index.js";
import { cleanupClips, clipsDir, ffprobeJson, makeClip, makeCorrupt, makeTruncated } from "../support/clips.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { makeVqdEnv, type DaemonProcess, type VqdEnv } from "../support/vqd-env.js";
import { listDir } from "./helpers.js";
import { alive, pidsWithArg } from "../support/processes.js";
import { waitFor as poll } from "../support/wait.js";

const TERMINAL = ["completed", "dead", "cancelled"];

/** Settings both daemons share: fast redelivery and retries, quiet, quick shutdown. */
const BASE: Readonly<Record<string, string>> = {
  VQD_NATS__ACKWAITMS: "3000",
  VQD_WORKERS__HEARTBEATMS: "1000",
  VQD_NATS__OUTBOXPOLLMS: "500",
  VQD_NATS__RECONCILEINTERVALMS: "2000",
  VQD_WORKERS__BACKOFF__INITIALMS: "200",
  VQD_WORKERS__BACKOFF__MAXMS: "500",
  VQD_WORKERS__SHUTDOWNDEADLINEMS: "1000",
  VQD_TELEMETRY__ENABLED: "false",
  VQD_LOGGING__LEVEL: "info",
  // A transcode slow enough to watch: the long clip through the archive profile (preset slow).
  VQD_PIPELINES__SLOW: "{steps: [{step: probe}, {step: transcode, options: {profile: archive-1080p}}]}",
};

interface EventRow {
  readonly type: string;
  readonly data: Record<string, unknown>;
}

interface VideoRow {
  readonly state: string;
  readonly attempts: number;
  readonly last_error: string | null;
}

let srv: TestNatsServer;
let nc: NatsConnection;
const envs: VqdEnv[] = [];
const daemons: DaemonProcess[] = [];
/** Clips made once: copied under each env's videos folder with a unique name per test. */
const clip = { small: "", smallFast: "", stall: "", long: "" };

function openRecord(env: VqdEnv): BetterSqlite3.Database {
  return new BetterSqlite3(path.join(env.dataDir, "vqd.db"), { readonly: true, fileMustExist: true });
}

function videoRow(env: VqdEnv, id: string): VideoRow | undefined {
  const db = openRecord(env);
  try {
    return db.prepare("SELECT state, attempts, last_error FROM videos WHERE id = ?").get(id) as VideoRow | undefined;
  } finally {
    db.close();
  }
}

function eventsOf(env: VqdEnv, id: string): EventRow[] {
  const db = openRecord(env);
  try {
    const rows = db.prepare("SELECT type, data FROM events WHERE stream_id = ? ORDER BY stream_version").all(id) as { type: string; data: string }[];
    return rows.map((r) => ({ type: r.type, data: JSON.parse(r.data) as Record<string, unknown> }));
  } finally {
    db.close();
  }
}

const count = (events: readonly EventRow[], type: string): number => events.filter((e) => e.type === type).length;

function tail(text: string, lines = 40): string {
  return text.split("\n").slice(-lines).join("\n");
}

const until = <T>(what: string, timeoutMs: number, probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, log?: () => string): Promise<T> =>
  poll(probe, timeoutMs, what, 50, log && (() => `--- daemon log ---\n${tail(log())}`));

async function waitTerminal(env: VqdEnv, id: string, timeoutMs: number, d: DaemonProcess): Promise<VideoRow> {
  return until(`video ${id} to finish`, timeoutMs, () => {
    const row = videoRow(env, id);
    return row && TERMINAL.includes(row.state) ? row : undefined;
  }, () => d.output());
}

async function newEnv(extra: Record<string, string> = {}): Promise<VqdEnv> {
  const env = await makeVqdEnv({ natsUrl: srv.url, extra: { ...BASE, ...extra } });
  envs.push(env);
  return env;
}

async function startDaemon(env: VqdEnv): Promise<DaemonProcess> {
  const d = env.spawnDaemon();
  daemons.push(d);
  await d.ready(30_000);
  return d;
}

/** A copy of `source` under the env's allowed folder, with a name no other test uses. */
function place(env: VqdEnv, source: string, label: string): string {
  const file = path.join(env.videosDir, `${label}-${randomBytes(4).toString("hex")}${path.extname(source)}`);
  fs.copyFileSync(source, file);
  return file;
}

async function cliJson<T>(env: VqdEnv, args: readonly string[]): Promise<T> {
  const r = await env.cli([...args, "--json"], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, `vqd ${args.join(" ")} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

async function enqueue(env: VqdEnv, files: readonly string[], pipeline?: string): Promise<string[]> {
  const out = await cliJson<{ id?: string; error?: string }[]>(env, ["enqueue", ...(pipeline ? ["--pipeline", pipeline] : []), ...files]);
  assert.equal(out.length, files.length);
  return out.map((o) => {
    assert.ok(o.id, `enqueue refused a file: ${o.error}`);
    return o.id;
  });
}

/** Live (non-zombie) processes whose command line contains `needle`. */
const liveWith = (needle: string): number[] => pidsWithArg(needle).filter(alive);

interface ShowJson {
  state: string;
  currentStep: string | null;
  lastError: { message: string; retryable: boolean } | null;
  outputs: Record<string, Record<string, unknown>>;
  progress?: { step: string; percent: number } | null;
  timeline: { type: string }[];
}

interface StatusJson {
  daemon: boolean;
  workers?: { running: { videoId: string; step: string | null; percent?: number | null }[] };
}

before(async () => {
  srv = await startNatsServer();
  nc = await connect({ servers: srv.url, name: "vqd-pipeline-daemon-test" });
  [clip.small, clip.smallFast, clip.stall, clip.long] = await Promise.all([
    makeClip({ seconds: 2, width: 320, height: 240, name: "small.mp4" }),
    makeClip({ seconds: 2, width: 320, height: 240, faststart: true, name: "small-faststart.mp4" }),
    makeClip({ seconds: 3, width: 320, height: 240, name: "stall.mp4" }),
    makeClip({ seconds: 12, width: 1280, height: 720, name: "long.mp4" }),
  ]);
});

after(async () => {
  for (const d of daemons) {
    if (d.child.exitCode === null && d.child.signalCode === null) {
      d.child.kill("SIGTERM");
      await Promise.race([d.exited(), sleep(10_000)]);
    }
  }
  const roots = [...envs.map((e) => e.root), clipsDir()];
  for (const env of envs) await env.cleanup();
  await nc?.close();
  await srv?.stop();
  cleanupClips();
  // Nothing of ours outlives the suite: no ffmpeg/ffprobe with one of our paths in its arguments.
  const left = roots.flatMap((r) => liveWith(r));
  assert.deepEqual(left, [], "processes left behind");
});

describe("daemon pipeline with real ffmpeg", () => {
  let env: VqdEnv;
  let daemon: DaemonProcess;
  let outputDir: string;
  let prefix: string;
  /** The ffmpeg stand-in (see the stall test) writes the pid of the ffmpeg it hung here. */
  let hungPidFile: string;

  before(async () => {
    const scratch = fs.mkdtempSync(path.join(clipsDir(), "bin-"));
    hungPidFile = path.join(scratch, "hung.pid");
    const wrapper = path.join(scratch, "ffmpeg");
    // ffmpeg, except that the first transcode of a file named *stallme* hangs after about a second
    // (SIGSTOP: alive, silent, no progress), the way a wedged encoder or a dead NFS mount looks.
    fs.writeFileSync(
      wrapper,
      [
        "#!/bin/sh",
        'case "$*" in',
        "  *stallme*-progress*)",
        `    if mkdir '${path.join(scratch, "stalled-once")}' 2>/dev/null; then`,
        '      ffmpeg -re "$@" &',
        `      echo $! > '${hungPidFile}'`,
        "      sleep 1",
        "      kill -STOP $!",
        "      exec sleep 3600",
        "    fi",
        "    ;;",
        "esac",
        'exec ffmpeg "$@"',
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    env = await newEnv({
      VQD_TRANSCODE__FFMPEG: wrapper,
      VQD_PIPELINES__STALL: "{steps: [{step: probe}, {step: transcode, options: {profile: web-720p, stallTimeoutMs: 2500}}]}",
    });
    outputDir = env.config().outputDir;
    prefix = env.config().nats.subjectPrefix;
    daemon = await startDaemon(env);
  });

  test("default pipeline: probe -> thumbnail -> transcode; outputs in outputDir/<id>/ and in vqd show", async () => {
    const file = place(env, clip.small, "default");
    const [id] = (await enqueue(env, [file])) as [string];
    const row = await waitTerminal(env, id, 30_000, daemon);
    assert.equal(row.state, "completed", `last error: ${row.last_error}`);
    assert.equal(row.attempts, 1);

    const dir = path.join(outputDir, id);
    assert.deepEqual(listDir(dir), ["thumbnail.jpg", "web-720p.mp4"], "exactly the outputs, no temporary files");
    const jpeg = fs.readFileSync(path.join(dir, "thumbnail.jpg"));
    assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff], "thumbnail is a JPEG");
    const out = ffprobeJson(path.join(dir, "web-720p.mp4"));
    const v = out.streams.find((s) => s.codec_type === "video");
    const a = out.streams.find((s) => s.codec_type === "audio");
    assert.equal(v?.codec_name, "h264");
    assert.equal(v?.height, 240);
    assert.equal(a?.codec_name, "aac");
    assert.ok(Math.abs(Number(out.format.duration) - 2) <= 0.1, `duration ${String(out.format.duration)}`);

    const shown = await cliJson<ShowJson>(env, ["show", id]);
    assert.equal(shown.state, "completed");
    assert.deepEqual(Object.keys(shown.outputs).sort(), ["probe", "thumbnail", "transcode"]);
    assert.equal(shown.outputs.thumbnail?.file, path.join(dir, "thumbnail.jpg"));
    assert.equal(shown.outputs.transcode?.file, path.join(dir, "web-720p.mp4"));
    assert.ok(Math.abs(Number(shown.outputs.probe?.durationS) - 2) <= 0.1, `probe durationS ${String(shown.outputs.probe?.durationS)}`);
    assert.deepEqual(
      shown.timeline.map((e) => e.type),
      ["VideoEnqueued", "AttemptStarted", "StepCompleted", "StepCompleted", "StepCompleted", "VideoCompleted"],
    );
  });

  test("corrupt and truncated files are dead-lettered at once, without retries", async () => {
    const files = [
      place(env, makeCorrupt("random.mp4"), "random-bytes"),
      // ffmpeg writes the index (moov) last: half a file has none.
      place(env, makeTruncated(clip.small, "truncated.mp4", 0.5), "truncated"),
      // Index first: it probes fine, but the media data stops half way.
      place(env, makeTruncated(clip.smallFast, "truncated-faststart.mp4", 0.5), "truncated-faststart"),
    ];
    const ids = await enqueue(env, files);
    for (const [i, id] of ids.entries()) {
      const row = await waitTerminal(env, id, 30_000, daemon);
      const events = eventsOf(env, id);
      const what = `${path.basename(files[i] as string)}: ${events.map((e) => e.type).join(", ")}`;
      assert.equal(row.state, "dead", what);
      assert.equal(count(events, "AttemptStarted"), 1, what);
      assert.equal(count(events, "AttemptFailed"), 1, what);
      assert.equal(count(events, "RetryScheduled"), 0, what);
      assert.equal(count(events, "VideoDeadLettered"), 1, what);
      const error = JSON.parse(row.last_error ?? "null") as { message: string; retryable: boolean } | null;
      assert.equal(error?.retryable, false, what);
      assert.match(error?.message ?? "", /not a video|corrupt input/, what);
      const shown = await cliJson<ShowJson>(env, ["show", id]);
      assert.equal(shown.state, "dead");
      assert.equal(shown.lastError?.message, error?.message);
      assert.equal(listDir(path.join(outputDir, id)).filter((n) => n.includes(".tmp-")).length, 0, `${what}: temporary files left`);
    }
  });

  test("progress: status and show name the running step with a percent; ticks on <prefix>.progress.<id>", async () => {
    const ticks: { subject: string; step: string; percent: number; videoId: string }[] = [];
    const sub = nc.subscribe(`${prefix}.progress.*`, {
      callback: (_err, msg) => {
        ticks.push({ subject: msg.subject, ...(JSON.parse(new TextDecoder().decode(msg.data)) as { step: string; percent: number; videoId: string }) });
      },
    });
    await nc.flush();
    try {
      const file = place(env, clip.long, "progress");
      const [id] = (await enqueue(env, [file], "slow")) as [string];
      const mine = () => ticks.filter((t) => t.videoId === id && t.step === "transcode" && t.percent > 0 && t.percent < 100);
      await until("a transcode progress tick", 30_000, () => mine().length >= 1, () => daemon.output());

      const status = await cliJson<StatusJson>(env, ["status"]);
      assert.equal(status.daemon, true);
      const running = status.workers?.running.find((r) => r.videoId === id);
      assert.equal(running?.step, "transcode", JSON.stringify(status.workers));
      assert.equal(typeof running?.percent, "number", JSON.stringify(status.workers));

      const shown = await cliJson<ShowJson>(env, ["show", id]);
      assert.equal(shown.state, "running");
      assert.equal(shown.currentStep, "transcode");
      assert.equal(shown.progress?.step, "transcode");
      assert.ok(typeof shown.progress?.percent === "number" && shown.progress.percent > 0, JSON.stringify(shown.progress));

      await until("a second, higher tick", 30_000, () => mine().length >= 2, () => daemon.output());
      const seen = mine();
      assert.ok(seen.every((t) => t.subject === makeSubjects(prefix).progress(id)), "ticks on <prefix>.progress.<id>");
      assert.ok((seen[1]?.percent ?? 0) > (seen[0]?.percent ?? 0), `percents rise: ${seen.map((t) => t.percent).join(", ")}`);
      // Progress is transport only, never in the record.
      assert.equal(eventsOf(env, id).filter((e) => /progress/i.test(e.type)).length, 0);

      await cliJson(env, ["cancel", id]);
      assert.equal((await waitTerminal(env, id, 15_000, daemon)).state, "cancelled");
    } finally {
      sub.unsubscribe();
    }
  });

  test("cancel kills ffmpeg within about a second and leaves no process or partial file", async () => {
    const file = place(env, clip.long, "cancel");
    const [id] = (await enqueue(env, [file], "slow")) as [string];
    const videoOut = path.join(outputDir, id) + path.sep;
    // The transcode's ffmpeg is the one process with this video's output folder in its arguments.
    const pids = await until("the transcode's ffmpeg", 30_000, () => {
      const p = liveWith(videoOut);
      return p.length > 0 ? p : undefined;
    }, () => daemon.output());
    await sleep(300);
    assert.equal(videoRow(env, id)?.state, "running");

    const r = await env.cli(["cancel", id]);
    assert.equal(r.code, 0, r.stderr);
    const t0 = Date.now();
    await until("ffmpeg to be gone", 5_000, () => liveWith(videoOut).length === 0 && pids.every((p) => !alive(p)));
    const goneMs = Date.now() - t0;
    assert.ok(goneMs <= 1_500, `ffmpeg still running ${goneMs} ms after vqd cancel returned`);
    const row = await waitTerminal(env, id, 10_000, daemon);
    assert.equal(row.state, "cancelled");
    assert.deepEqual(liveWith(file), [], "no ffmpeg/ffprobe left on the input");
    // The worker removes ffmpeg's temporary output right after ffmpeg exits; nothing else remains.
    await until("the temporary output to be removed", 3_000, () => listDir(path.join(outputDir, id)).length === 0, () => daemon.output());
    const events = eventsOf(env, id);
    assert.equal(count(events, "VideoCancelled"), 1);
    assert.equal(count(events, "AttemptFailed"), 0, "a cancel is not a failure");
    console.log(`# ffmpeg gone ${goneMs} ms after vqd cancel returned`);
  });

  test("a hung transcode (no progress for stallTimeoutMs) is killed and retried", async () => {
    const file = place(env, clip.stall, "stallme");
    const [id] = (await enqueue(env, [file], "stall")) as [string];
    const row = await waitTerminal(env, id, 45_000, daemon);
    const events = eventsOf(env, id);
    const what = events.map((e) => e.type).join(", ");
    assert.equal(row.state, "completed", `${what}\n${row.last_error}`);
    assert.equal(count(events, "AttemptStarted"), 2, what);
    assert.equal(count(events, "RetryScheduled"), 1, what);
    const failed = events.find((e) => e.type === "AttemptFailed")?.data.error as { step: string; message: string; retryable: boolean } | undefined;
    assert.equal(failed?.step, "transcode");
    assert.equal(failed?.retryable, true);
    assert.match(failed?.message ?? "", /stalled: ffmpeg made no progress for 2500 ms/);
    // The hung ffmpeg was killed, not left stopped in the background.
    const hung = Number(fs.readFileSync(hungPidFile, "utf8").trim());
    assert.ok(hung > 0);
    assert.equal(alive(hung), false, `hung ffmpeg ${hung} still alive`);
    assert.deepEqual(listDir(path.join(outputDir, id)), ["web-720p.mp4"]);
    const out = ffprobeJson(path.join(outputDir, id, "web-720p.mp4"));
    assert.ok(Math.abs(Number(out.format.duration) - 3) <= 0.1, `duration ${String(out.format.duration)}`);
  });
});

describe("kill -9 of the daemon during a transcode", () => {
  test("restart: no partial output, the video completes, probe and thumbnail are not rerun", async () => {
    const env = await newEnv({
      VQD_WORKERS__COUNT: "1",
      VQD_PIPELINES__DEFAULT: "{steps: [{step: probe}, {step: thumbnail}, {step: transcode, options: {profile: archive-1080p}}]}",
    });
    const outputDir = env.config().outputDir;
    const prefix = env.config().nats.subjectPrefix;
    let first = await startDaemon(env);
    const file = place(env, clip.long, "crash");

    let ticked = false;
    const sub = nc.subscribe(`${prefix}.progress.*`, {
      callback: (_err, msg) => {
        const t = JSON.parse(new TextDecoder().decode(msg.data)) as { step: string; percent: number };
        if (t.step === "transcode" && t.percent > 0) ticked = true;
      },
    });
    await nc.flush();
    const [id] = (await enqueue(env, [file])) as [string];
    const dir = path.join(outputDir, id);
    await until("the transcode to be under way", 30_000, () => ticked, () => first.output());
    sub.unsubscribe();
    const ffmpegPids = liveWith(dir + path.sep);
    assert.ok(ffmpegPids.length > 0, "ffmpeg is transcoding");

    first.child.kill("SIGKILL");
    assert.equal(await first.exited(), "SIGKILL");
    // ffmpeg dies with the daemon (parent-death signal), and no finished-looking file exists.
    await until("ffmpeg to die with the daemon", 5_000, () => ffmpegPids.every((p) => !alive(p)));
    const afterCrash = listDir(dir);
    assert.ok(afterCrash.includes("thumbnail.jpg"), afterCrash.join(", "));
    assert.deepEqual(afterCrash.filter((n) => !n.startsWith(".")), ["thumbnail.jpg"], "only complete outputs under their final names");
    const thumb = fs.statSync(path.join(dir, "thumbnail.jpg"));
    assert.equal(videoRow(env, id)?.state, "running");

    first = await startDaemon(env);
    const row = await waitTerminal(env, id, 60_000, first);
    assert.equal(row.state, "completed", `last error: ${row.last_error}\n${tail(first.output())}`);

    assert.deepEqual(listDir(dir), ["archive-1080p.mp4", "thumbnail.jpg"], "complete outputs only, no temporary file left");
    const thumbAfter = fs.statSync(path.join(dir, "thumbnail.jpg"));
    assert.equal(thumbAfter.ino, thumb.ino, "thumbnail not rewritten");
    assert.equal(thumbAfter.mtimeMs, thumb.mtimeMs, "thumbnail not rewritten");
    const out = ffprobeJson(path.join(dir, "archive-1080p.mp4"));
    assert.ok(Math.abs(Number(out.format.duration) - 12) <= 0.1, `duration ${String(out.format.duration)}`);

    const events = eventsOf(env, id);
    const what = events.map((e) => e.type).join(", ");
    const completedSteps = events.filter((e) => e.type === "StepCompleted").map((e) => e.data as { index: number; attempt: number });
    assert.deepEqual(completedSteps.map((s) => s.index), [0, 1, 2], `exactly one StepCompleted per step: ${what}`);
    assert.deepEqual(completedSteps.map((s) => s.attempt), [1, 1, 2], "probe and thumbnail from the first attempt, transcode from the second");
    assert.equal(count(events, "AttemptStarted"), 2, what);
    assert.equal(count(events, "AttemptFailed"), 0, what);
    assert.equal(count(events, "VideoCompleted"), 1, what);

    first.child.kill("SIGTERM");
    assert.equal(await first.exited(), 0, tail(first.output()));
  });
});
