import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { createChecksumStep, createExecStep } from "../../src/pipeline/index.js";
import { cleanupClips, makeClip } from "../support/clips.js";
import { cleanupScratch, freshDir, listDir, runStep, stepError } from "./helpers.js";

let clip: string;

before(async () => {
  clip = await makeClip({ seconds: 1, width: 320, height: 240 });
});

after(() => {
  cleanupClips();
  cleanupScratch();
});

const sha256sum = (file: string): string => (execFileSync("sha256sum", [file], { encoding: "utf8" }).split(" ")[0] ?? "").trim();

describe("checksum", () => {
  const checksum = createChecksumStep();

  test("equals sha256sum, with the byte count", async () => {
    const { outputs } = await runStep(checksum, { path: clip });
    assert.deepEqual(outputs, { sha256: sha256sum(clip), bytes: fs.statSync(clip).size });
  });

  test("a larger file read in several chunks; options.of adds an earlier step's output file", async () => {
    const big = path.join(freshDir(), "big.bin");
    fs.writeFileSync(big, Buffer.alloc(3 * 1024 * 1024 + 17, 7));
    const { outputs } = await runStep(checksum, { path: clip, options: { of: "transcode.file" }, previous: { transcode: { file: big } } });
    assert.equal(outputs.sha256, sha256sum(clip));
    assert.deepEqual(outputs.of, { "transcode.file": { file: big, sha256: sha256sum(big), bytes: 3 * 1024 * 1024 + 17 } });
  });

  test("errors: missing input, missing earlier output, bad options", async () => {
    await stepError(runStep(checksum, { path: "/nonexistent/x.mp4" }), { retryable: false, message: /no such file/ });
    await stepError(runStep(checksum, { path: clip, options: { of: "transcode.file" } }), { retryable: false, message: /step "transcode" has no output "file"/ });
    assert.throws(() => checksum.validateOptions?.({ of: "transcode" }), /checksum: options\.of must be "<step>\.<output>"/);
    assert.throws(() => checksum.validateOptions?.({ algo: "md5" }), /unknown option "algo"/);
    checksum.validateOptions?.({ of: ["transcode.file", "thumbnail.file"] });
  });
});

describe("exec", () => {
  const exec = createExecStep();

  test("placeholders; {output:NAME} is written to a temporary path and renamed on success", async () => {
    const outputDir = path.join(freshDir(), "v42");
    const seen = path.join(freshDir(), "seen.txt");
    const { outputs } = await runStep(exec, {
      path: clip,
      outputDir,
      videoId: "v42",
      options: {
        command: ["sh", "-c", 'cp "$1" "$2" && printf "%s|%s|%s|%s" "$3" "$4" "$2" "$VQD_VIDEO_ID" > "$5"', "sh", "{input}", "{output:copy.mp4}", "{videoId}", "dir={outputDir}", seen],
      },
    });
    const final = path.join(outputDir, "copy.mp4");
    assert.deepEqual(outputs.files, { "copy.mp4": final });
    assert.equal(outputs.exitCode, 0);
    assert.ok(fs.readFileSync(final).equals(fs.readFileSync(clip)));
    const [videoId, dir, tempPath, envId] = fs.readFileSync(seen, "utf8").split("|");
    assert.equal(videoId, "v42");
    assert.equal(dir, `dir=${outputDir}`);
    assert.match(path.basename(tempPath ?? ""), /^\.copy\.mp4\.tmp-[0-9a-f]+$/, "the command wrote a temporary name");
    assert.equal(envId, "v42");
    assert.deepEqual(listDir(outputDir), ["copy.mp4"]);
  });

  test("no shell: metacharacters in arguments arrive literally", async () => {
    const outputDir = path.join(freshDir(), "v1");
    const literal = "$(id) `id` | * ; {notaplaceholder}";
    const { outputs } = await runStep(exec, { path: clip, outputDir, options: { command: ["sh", "-c", 'printf "%s" "$1" > "$2"', "sh", literal, "{output:ab.txt}"] } });
    assert.equal(fs.readFileSync((outputs.files as Record<string, string>)["ab.txt"] as string, "utf8"), literal);
  });

  test("a non-zero exit fails with the stderr tail: retryable, or not with retryable: false; no output is left", async () => {
    const outputDir = path.join(freshDir(), "v2");
    const command = ["sh", "-c", 'echo partial > "$1"; echo "cannot frobnicate" >&2; exit 4', "sh", "{output:x.txt}"];
    await stepError(runStep(exec, { path: clip, outputDir, options: { command } }), { retryable: true, message: /exited with code 4: cannot frobnicate/ });
    await stepError(runStep(exec, { path: clip, outputDir, options: { command, retryable: false } }), { retryable: false, message: /cannot frobnicate/ });
    assert.deepEqual(listDir(outputDir), []);
  });

  test("an output the command did not write, a missing program, a timeout", async () => {
    const outputDir = path.join(freshDir(), "v3");
    await stepError(runStep(exec, { path: clip, outputDir, options: { command: ["true", "{output:never.txt}"] } }), {
      retryable: false,
      message: /did not write \{output:never\.txt\}/,
    });
    await stepError(runStep(exec, { path: clip, outputDir, options: { command: ["vqd-no-such-tool", "{input}"] } }), {
      retryable: false,
      message: /command not found: vqd-no-such-tool/,
    });
    await stepError(runStep(exec, { path: clip, outputDir, options: { command: ["sleep", "30"], timeoutMs: 200 } }), { retryable: true, message: /timed out after 200 ms/ });
    await stepError(runStep(exec, { path: clip, outputDir, options: { command: ["sleep", "30"], stallTimeoutMs: 200 } }), { retryable: true, message: /stalled/ });
    assert.deepEqual(listDir(outputDir), []);
  });

  test("validateOptions names the bad option", () => {
    assert.throws(() => exec.validateOptions?.({}), /exec: options\.command must be a non-empty list of strings/);
    assert.throws(() => exec.validateOptions?.({ command: "ffmpeg -i x" }), /exec: options\.command must be a non-empty list/);
    assert.throws(() => exec.validateOptions?.({ command: ["cp", "{input}", "{output:../escape}"] }), /\{output:\.\.\/escape\}: an output must be a plain file name/);
    assert.throws(() => exec.validateOptions?.({ command: ["x"], timeoutMs: 0 }), /options\.timeoutMs must be an integer/);
    assert.throws(() => exec.validateOptions?.({ command: ["x"], shell: true }), /unknown option "shell"/);
    exec.validateOptions?.({ command: ["convert", "{input}", "{output:x.png}"], timeoutMs: 1000, retryable: false });
  });
});
