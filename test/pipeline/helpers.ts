import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { StepOutputs } from "../../src/domain/index.js";
import { StepError, type Step } from "../../src/pipeline/index.js";

export interface RunStepOptions {
  path: string;
  options?: Record<string, unknown>;
  previous?: Record<string, StepOutputs>;
  outputDir?: string;
  name?: string;
  videoId?: string;
  signal?: AbortSignal;
  onProgress?: (percent: number) => void;
}

let scratch: string | undefined;

/** A fresh directory under this process's scratch directory. */
export function freshDir(prefix = "case"): string {
  scratch ??= fs.mkdtempSync(path.join(os.tmpdir(), "vqd-pipeline-"));
  return fs.mkdtempSync(path.join(scratch, `${prefix}-`));
}

export function cleanupScratch(): void {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
}

/** Runs a step the way the worker pool does; returns its outputs and the progress it reported. */
export async function runStep(step: Step, o: RunStepOptions): Promise<{ outputs: StepOutputs; progress: number[] }> {
  const progress: number[] = [];
  const videoId = o.videoId ?? "v000001";
  const outputs = await step.run(
    {
      videoId,
      path: o.path,
      pipeline: "test",
      index: 0,
      name: o.name ?? step.kind,
      previous: o.previous ?? {},
      options: o.options ?? {},
      outputDir: o.outputDir ?? path.join(freshDir("out"), videoId),
      attempt: 1,
    },
    {
      signal: o.signal ?? new AbortController().signal,
      progress: (p) => {
        progress.push(p);
        o.onProgress?.(p);
      },
    },
  );
  return { outputs, progress };
}

/** Awaits a rejection that must be a StepError; returns it. */
export async function stepError(promise: Promise<unknown>, expected: { retryable: boolean; message?: RegExp }): Promise<StepError> {
  let caught: unknown;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, "expected the step to fail");
  assert.ok(caught instanceof StepError, `expected a StepError, got ${String(caught)}`);
  assert.equal(caught.retryable, expected.retryable, `retryable should be ${expected.retryable}: ${caught.message}`);
  if (expected.message) assert.match(caught.message, expected.message);
  return caught;
}

/** Files in a directory (none if it does not exist). */
export function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}
