import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { BUILTIN_PROFILES, type TranscodeProfile } from "../../src/config/schema.js";
import { createProbeStep, createTranscodeStep, StepAbortedError, type ProbeOutputs } from "../../src/pipeline/index.js";
import { cleanupClips, ffprobeJson, makeClip, makeCorrupt, makeTruncated } from "../support/clips.js";
import { cleanupScratch, freshDir, listDir, runStep, stepError } from "./helpers.js";
import { alive, pidsWithArg, reaped } from "../support/processes.js";

const fast: TranscodeProfile = { videoCodec: "libx264", preset: "ultrafast", crf: 30, maxHeight: 240, audioCodec: "aac", audioBitrate: "64k", container: "mp4" };
const profiles: Record<string, TranscodeProfile> = {
  ...BUILTIN_PROFILES,
  p240: fast,
  // Slow enough per frame to be caught in the middle.
  crawl: { ...fast, preset: "veryslow", crf: 10, maxHeight: 0 },
};
const transcode = createTranscodeStep({ transcode: { profiles } }, { killGraceMs: 300 });

let vga: string;
let small: string;
let silent: string;
let rotated: string;

before(async () => {
  [vga, small, silent, rotated] = await Promise.all([
    makeClip({ seconds: 3, width: 640, height: 480, fps: 25 }),
    makeClip({ seconds: 1, width: 320, height: 240, fps: 25, faststart: true }),
    makeClip({ seconds: 1, width: 320, height: 240, fps: 25, audio: false }),
    makeClip({ seconds: 1, width: 320, height: 240, fps: 25, rotate: 90 }),
  ]);
});

after(() => {
  cleanupClips();
  cleanupScratch();
});

const duration = (file: string): number => Number(ffprobeJson(file).format.duration);
const streamsOf = (file: string) => ffprobeJson(file).streams;

describe("transcode", () => {
  test("640x480 with maxHeight 240 -> 320x240 H.264/AAC MP4, same duration, progress up to 100", async () => {
    const outputDir = path.join(freshDir(), "v1");
    const { outputs, progress } = await runStep(transcode, { path: vga, outputDir, options: { profile: "p240" } });
    const file = path.join(outputDir, "p240.mp4");
    assert.equal(outputs.file, file);
    assert.deepEqual([outputs.profile, outputs.width, outputs.height], ["p240", 320, 240]);
    assert.equal(outputs.sizeBytes, fs.statSync(file).size);
    const [v, a, ...rest] = streamsOf(file);
    assert.deepEqual([v?.codec_type, v?.codec_name, v?.width, v?.height, v?.pix_fmt], ["video", "h264", 320, 240, "yuv420p"]);
    assert.deepEqual([a?.codec_type, a?.codec_name], ["audio", "aac"]);
    assert.equal(rest.length, 0);
    assert.ok(Math.abs(duration(file) - duration(vga)) <= 0.1, `${duration(file)} vs ${duration(vga)}`);
    assert.ok(Math.abs((outputs.durationS as number) - duration(vga)) <= 0.1);
    assert.ok(progress.length >= 2, `progress ${JSON.stringify(progress)}`);
    for (let i = 1; i < progress.length; i++) assert.ok((progress[i] as number) > (progress[i - 1] as number), `increasing: ${JSON.stringify(progress)}`);
    assert.equal(progress.at(-1), 100);
    assert.deepEqual(listDir(outputDir), ["p240.mp4"]);
  });

  test("faststart: the index is before the media data", async () => {
    const { outputs } = await runStep(transcode, { path: small, options: { profile: "p240" } });
    const head = fs.readFileSync(outputs.file as string).subarray(0, 4096).toString("latin1");
    assert.ok(head.indexOf("moov") >= 0 && head.indexOf("moov") < (head.indexOf("mdat") === -1 ? Infinity : head.indexOf("mdat")));
  });

  test("the default profile web-720p never scales up: 320x240 stays 320x240", async () => {
    const { outputs } = await runStep(createTranscodeStep(), { path: small });
    assert.equal(path.basename(outputs.file as string), "web-720p.mp4");
    const v = streamsOf(outputs.file as string)[0];
    assert.deepEqual([v?.codec_name, v?.width, v?.height], ["h264", 320, 240]);
    assert.deepEqual([outputs.width, outputs.height], [320, 240]);
  });

  test("no audio in, no audio out", async () => {
    const { outputs } = await runStep(transcode, { path: silent, options: { profile: "p240" } });
    const streams = streamsOf(outputs.file as string);
    assert.deepEqual(
      streams.map((s) => s.codec_type),
      ["video"],
    );
  });

  test("a rotated input is turned upright and scaled by its displayed height", async () => {
    const { outputs } = await runStep(transcode, { path: rotated, options: { profile: "p240" } });
    assert.deepEqual([outputs.width, outputs.height], [180, 240]);
    const probe = (await runStep(createProbeStep(), { path: outputs.file as string })).outputs as ProbeOutputs;
    assert.equal(probe.video?.displayWidth, 180);
    assert.equal(probe.video?.displayHeight, 240);
  });

  test("skipIfMatches copies an input that already fits the profile", async () => {
    const { outputs } = await runStep(transcode, { path: small, options: { profile: "web-720p", skipIfMatches: true } });
    assert.equal(outputs.skipped, true);
    assert.deepEqual([outputs.width, outputs.height], [320, 240]);
    assert.ok(fs.readFileSync(outputs.file as string).equals(fs.readFileSync(small)));
    const again = await runStep(transcode, { path: vga, options: { profile: "p240", skipIfMatches: true } });
    assert.equal(again.outputs.skipped, undefined, "a 480p input does not fit a 240p profile");
  });

  test("abort kills ffmpeg (no orphan) and leaves no partial or temporary output", async () => {
    const outputDir = path.join(freshDir(), "v-abort");
    const ac = new AbortController();
    let pids: number[] = [];
    const run = runStep(transcode, {
      path: vga,
      outputDir,
      signal: ac.signal,
      options: { profile: "crawl" },
      onProgress: () => {
        if (pids.length > 0) return;
        pids = pidsWithArg(outputDir);
        ac.abort("cancelled");
      },
    });
    await assert.rejects(run, (e: unknown) => e instanceof StepAbortedError && e.retryable && /cancelled/.test(e.message));
    assert.equal(pids.length, 1, "one ffmpeg was running");
    for (const pid of pids) {
      assert.throws(() => process.kill(pid, 0), { code: "ESRCH" });
      assert.ok(reaped(pid));
    }
    assert.deepEqual(pidsWithArg(outputDir), []);
    assert.deepEqual(listDir(outputDir), []);
  });

  test("a stalled ffmpeg (input from a FIFO nobody writes) is killed: retryable 'stalled'", async () => {
    const dir = freshDir();
    const fifo = path.join(dir, "stuck.mp4");
    execFileSync("mkfifo", [fifo]);
    const outputDir = path.join(dir, "v-stall");
    const probe = (await runStep(createProbeStep(), { path: vga })).outputs;
    const started = Date.now();
    let seen: number[] = [];
    const run = runStep(transcode, { path: fifo, outputDir, previous: { probe }, options: { profile: "p240", stallTimeoutMs: 400 } });
    await sleep(200);
    seen = pidsWithArg(fifo);
    await stepError(run, { retryable: true, message: /stalled: ffmpeg made no progress for 400 ms/ });
    assert.ok(Date.now() - started >= 400);
    assert.equal(seen.length, 1, "ffmpeg was waiting on the FIFO");
    for (const pid of seen) assert.equal(alive(pid), false);
    assert.deepEqual(pidsWithArg(fifo), []);
    assert.deepEqual(listDir(outputDir), []);
  });

  test("corrupt and truncated inputs fail for good", async () => {
    const outputDir = path.join(freshDir(), "v-bad");
    await stepError(runStep(transcode, { path: makeCorrupt("tc-random.mp4"), outputDir }), { retryable: false, message: /^not a video: .*tc-random\.mp4/ });
    await stepError(runStep(transcode, { path: makeTruncated(vga, "tc-half.mp4"), outputDir }), { retryable: false, message: /^not a video: .*moov atom not found/ });
    // With the index at the front, the first half still probes; the missing media data is caught while transcoding.
    const frontIndexed = await makeClip({ seconds: 2, width: 320, height: 240, faststart: true, name: "fs-2s.mp4" });
    const half = makeTruncated(frontIndexed, "tc-fs-half.mp4");
    await stepError(runStep(transcode, { path: half, outputDir, options: { profile: "p240" } }), { retryable: false, message: /truncated/ });
    assert.deepEqual(listDir(outputDir), []);
  });

  test("a missing ffmpeg binary is a non-retryable error that says how to install it", async () => {
    const step = createTranscodeStep({ transcode: { ffmpeg: "vqd-missing-ffmpeg", profiles } });
    await stepError(runStep(step, { path: small, options: { profile: "p240" } }), { retryable: false, message: /command not found: vqd-missing-ffmpeg.*apt-get install ffmpeg/ });
  });

  test("validateOptions names the bad option", () => {
    assert.throws(() => transcode.validateOptions?.({ profile: "web-4k" }), /transcode: options\.profile must name a profile in transcode\.profiles \(.*"web-720p".*\) \(got "web-4k"\)/);
    assert.throws(() => transcode.validateOptions?.({ profile: "p240", crf: 20 }), /unknown option "crf"/);
    assert.throws(() => transcode.validateOptions?.({ stallTimeoutMs: "1m" }), /options\.stallTimeoutMs must be an integer/);
    assert.throws(() => transcode.validateOptions?.({ skipIfMatches: "yes" }), /options\.skipIfMatches must be true or false/);
    transcode.validateOptions?.({});
    transcode.validateOptions?.({ profile: "archive-1080p", skipIfMatches: true, stallTimeoutMs: 5000 });
  });
});
