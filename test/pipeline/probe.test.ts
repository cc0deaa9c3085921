import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, test } from "node:test";
import { createProbeStep, type ProbeOutputs } from "../../src/pipeline/index.js";
import { cleanupClips, makeAudioOnly, makeClip, makeCorrupt, makeTruncated } from "../support/clips.js";
import { cleanupScratch, freshDir, runStep, stepError } from "./helpers.js";

const probe = createProbeStep();
let av: string;
let silent: string;
let rotated: string;

before(async () => {
  [av, silent, rotated] = await Promise.all([
    makeClip({ seconds: 2, width: 320, height: 240, fps: 25, audio: true }),
    makeClip({ seconds: 1, width: 320, height: 240, fps: 30, audio: false }),
    makeClip({ seconds: 1, width: 320, height: 240, fps: 25, audio: true, rotate: 90 }),
  ]);
});

after(() => {
  cleanupClips();
  cleanupScratch();
});

const probeOf = async (path: string): Promise<ProbeOutputs> => (await runStep(probe, { path })).outputs as ProbeOutputs;

describe("probe", () => {
  test("a clip with audio: every field", async () => {
    const p = await probeOf(av);
    assert.ok(p.durationS !== null && Math.abs(p.durationS - 2) <= 0.05, `duration ${p.durationS}`);
    assert.match(p.container, /(^|,)mp4(,|$)/);
    assert.equal(p.sizeBytes, fs.statSync(av).size);
    assert.ok(p.bitRate !== null && p.bitRate > 0);
    assert.equal(p.streams, 2);
    assert.ok(p.video);
    assert.equal(p.video.codec, "h264");
    assert.equal(p.video.width, 320);
    assert.equal(p.video.height, 240);
    assert.equal(p.video.fps, 25);
    assert.equal(p.video.pixFmt, "yuv420p");
    assert.equal(p.video.rotation, 0);
    assert.equal(p.video.displayWidth, 320);
    assert.equal(p.video.displayHeight, 240);
    assert.ok(p.video.bitRate !== null && p.video.bitRate > 0);
    assert.deepEqual({ ...p.audio, bitRate: undefined }, { codec: "aac", channels: 2, sampleRate: 48000, bitRate: undefined });
    assert.ok(p.audio?.bitRate && p.audio.bitRate > 0);
  });

  test("a clip without audio: audio is null", async () => {
    const p = await probeOf(silent);
    assert.ok(p.durationS !== null && Math.abs(p.durationS - 1) <= 0.05, `duration ${p.durationS}`);
    assert.equal(p.audio, null);
    assert.equal(p.streams, 1);
    assert.equal(p.video?.fps, 30);
  });

  test("a rotated clip: clockwise rotation and the display size", async () => {
    const p = await probeOf(rotated);
    assert.equal(p.video?.rotation, 90);
    assert.equal(p.video?.width, 320);
    assert.equal(p.video?.height, 240);
    assert.equal(p.video?.displayWidth, 240);
    assert.equal(p.video?.displayHeight, 320);
  });

  test("the outputs survive a JSON round trip (they go into the event log)", async () => {
    const p = await probeOf(av);
    assert.deepEqual(JSON.parse(JSON.stringify(p)), p);
  });

  test("random bytes named .mp4: non-retryable 'not a video'", async () => {
    const bad = makeCorrupt("random.mp4");
    await stepError(runStep(probe, { path: bad }), { retryable: false, message: /^not a video: .*random\.mp4: .*Invalid data found/ });
  });

  test("the first half of an MP4: non-retryable 'not a video' with the reason", async () => {
    const half = makeTruncated(av, "half.mp4");
    await stepError(runStep(probe, { path: half }), { retryable: false, message: /^not a video: .*half\.mp4: .*moov atom not found/ });
  });

  test("an audio-only file: non-retryable 'not a video: no video stream'", async () => {
    const m4a = await makeAudioOnly(1);
    await stepError(runStep(probe, { path: m4a }), { retryable: false, message: /^not a video: no video stream/ });
  });

  test("a missing file or a directory: non-retryable", async () => {
    await stepError(runStep(probe, { path: "/nonexistent/clip.mp4" }), { retryable: false, message: /no such file/ });
    await stepError(runStep(probe, { path: freshDir() }), { retryable: false, message: /not a regular file/ });
  });

  test("a missing ffprobe binary: non-retryable, says how to install it", async () => {
    const step = createProbeStep({ transcode: { ffprobe: "/nonexistent/ffprobe" } });
    await stepError(runStep(step, { path: av }), { retryable: false, message: /command not found: \/nonexistent\/ffprobe.*apt-get install ffmpeg/ });
  });

  test("validateOptions names the bad option", () => {
    assert.throws(() => probe.validateOptions?.({ timeout: 5 }), /probe: unknown option "timeout" \(known options: timeoutMs\)/);
    assert.throws(() => probe.validateOptions?.({ timeoutMs: -1 }), /probe: options\.timeoutMs must be an integer/);
    probe.validateOptions?.({});
  });
});
