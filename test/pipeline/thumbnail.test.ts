import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { createProbeStep, createThumbnailStep } from "../../src/pipeline/index.js";
import { cleanupClips, ffprobeJson, makeClip, makeCorrupt } from "../support/clips.js";
import { cleanupScratch, freshDir, listDir, runStep, stepError } from "./helpers.js";

const thumbnail = createThumbnailStep();
let clip: string;
let rotated: string;

before(async () => {
  [clip, rotated] = await Promise.all([
    makeClip({ seconds: 2, width: 320, height: 240, fps: 25 }),
    makeClip({ seconds: 1, width: 320, height: 240, fps: 25, audio: false, rotate: 90 }),
  ]);
});

after(() => {
  cleanupClips();
  cleanupScratch();
});

function assertJpeg(file: string, width: number, height: number): void {
  const data = fs.readFileSync(file);
  assert.deepEqual([...data.subarray(0, 2)], [0xff, 0xd8], "starts with SOI");
  assert.deepEqual([...data.subarray(-2)], [0xff, 0xd9], "ends with EOI");
  const s = ffprobeJson(file).streams[0];
  assert.equal(s?.codec_name, "mjpeg");
  assert.equal(s?.width, width);
  assert.equal(s?.height, height);
}

describe("thumbnail", () => {
  test("default: a 320 px wide JPEG at 10% of the duration, written atomically", async () => {
    const outputDir = path.join(freshDir(), "v1");
    const { outputs, progress } = await runStep(thumbnail, { path: clip, outputDir });
    assert.equal(outputs.file, path.join(outputDir, "thumbnail.jpg"));
    assert.equal(outputs.width, 320);
    assert.equal(outputs.height, 240);
    assert.ok(Math.abs((outputs.atS as number) - 0.2) < 0.01, `at ${String(outputs.atS)}`);
    assert.equal(outputs.sizeBytes, fs.statSync(outputs.file as string).size);
    assertJpeg(outputs.file as string, 320, 240);
    assert.deepEqual(listDir(outputDir), ["thumbnail.jpg"]);
    assert.equal(progress.at(-1), 100);
  });

  test("configured width; height by the displayed aspect (rotated clip), even", async () => {
    const { outputs } = await runStep(thumbnail, { path: rotated, options: { width: 160 } });
    assert.equal(outputs.width, 160);
    assert.equal(outputs.height, 214); // 160 * 320/240 = 213.3 -> even
    assertJpeg(outputs.file as string, 160, 214);
  });

  test("at: seconds, a percentage, a point past the end (clamped)", async () => {
    for (const [at, expected] of [
      [1.5, 1.5],
      ["50%", 1],
      ["0.25", 0.25],
      [30, 1.96],
    ] as const) {
      const { outputs } = await runStep(thumbnail, { path: clip, options: { at } });
      assert.ok(Math.abs((outputs.atS as number) - expected) < 0.02, `at ${String(at)} -> ${String(outputs.atS)}`);
      assertJpeg(outputs.file as string, 320, 240);
    }
  });

  test("uses the probe of an earlier step when there is one", async () => {
    const probe = (await runStep(createProbeStep(), { path: clip })).outputs;
    const { outputs } = await runStep(thumbnail, { path: clip, previous: { probe: { ...probe, durationS: 1 } } });
    assert.equal(outputs.atS, 0.1);
  });

  test("a step with another name writes <name>.jpg; stale temp files are removed first", async () => {
    const outputDir = path.join(freshDir(), "v2");
    fs.mkdirSync(outputDir);
    fs.writeFileSync(path.join(outputDir, ".poster.jpg.tmp-0123456789ab"), "left by a crash");
    const { outputs } = await runStep(thumbnail, { path: clip, outputDir, name: "poster" });
    assert.equal(outputs.file, path.join(outputDir, "poster.jpg"));
    assert.deepEqual(listDir(outputDir), ["poster.jpg"]);
  });

  test("a corrupt file fails for good and leaves nothing behind", async () => {
    const outputDir = path.join(freshDir(), "v3");
    await stepError(runStep(thumbnail, { path: makeCorrupt("thumb-random.mp4"), outputDir }), { retryable: false, message: /^not a video: / });
    assert.deepEqual(listDir(outputDir), []);
  });

  test("validateOptions names the bad option", () => {
    assert.throws(() => thumbnail.validateOptions?.({ at: "ten%" }), /thumbnail: options\.at must be seconds .* \(got "ten%"\)/);
    assert.throws(() => thumbnail.validateOptions?.({ at: "150%" }), /options\.at/);
    assert.throws(() => thumbnail.validateOptions?.({ width: 0 }), /thumbnail: options\.width must be an integer between 16 and 7680 \(got 0\)/);
    assert.throws(() => thumbnail.validateOptions?.({ height: 100 }), /unknown option "height"/);
    thumbnail.validateOptions?.({ at: "10%", width: 640, quality: 5 });
  });
});
