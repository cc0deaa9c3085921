/**
 * Failures through the whole daemon: automatic retries with backoff, dead-lettering when the
 * attempts run out or the failure is fatal, operator redrive (`vqd retry`) over the API, and
 * resuming at the step that failed (completed steps are never rerun).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { VideoJson } from "../../src/api/index.js";
import { countOf, startHarness, type Harness } from "../workers/daemon-harness.js";

/**
 * Fails the first 3 times it runs for a video, then succeeds: the built-in exec step counts its
 * runs in a file in the video's output directory (its working directory). The sleep step's
 * `failTimes` cannot show a redrive succeeding: it compares with the attempt number, and attempts
 * restart at 1 after an operator redrive (each redrive gets a fresh maxAttempts budget), so a
 * step that failed attempts 1..maxAttempts fails them all again after the redrive.
 */
const FAIL_THREE_RUNS = `[sh, -c, "n=$(cat runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > runs; echo run $n >&2; test $n -gt 3"]`;

describe("retries, dead letters and redrive", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      extra: {
        VQD_WORKERS__MAXATTEMPTS: "3",
        VQD_PIPELINES__FLAKY__STEPS: "[{step: sleep, options: {ms: 5, fail: retryable, failTimes: 2}}]",
        VQD_PIPELINES__FATAL__STEPS: "[{step: sleep, options: {ms: 5, fail: fatal}}]",
        VQD_PIPELINES__REDRIVE__STEPS: `[{step: exec, options: {command: ${FAIL_THREE_RUNS}}}]`,
        VQD_PIPELINES__RESUME__STEPS: "[{step: noop}, {step: sleep, options: {ms: 5, fail: retryable, failTimes: 1}}]",
      },
    });
  });
  after(async () => {
    await h?.close();
  });

  const types = (id: string): string[] => h.daemon.store.timeline(id).map((e) => e.type);

  it("retries a retryable failure with backoff and completes on attempt 3", async () => {
    const [id] = (await h.enqueue(1, { pipeline: "flaky" })) as [string];
    await h.waitState(id, "completed");
    assert.deepEqual(types(id), [
      "VideoEnqueued",
      "AttemptStarted",
      "AttemptFailed",
      "RetryScheduled",
      "AttemptStarted",
      "AttemptFailed",
      "RetryScheduled",
      "AttemptStarted",
      "StepCompleted",
      "VideoCompleted",
    ]);
    const v = h.daemon.store.get(id);
    assert.equal(v?.attempts, 3);
    const started = h.daemon.store.timeline(id).filter((e) => e.type === "AttemptStarted");
    assert.deepEqual(started.map((e) => (e.data as { attempt: number }).attempt), [1, 2, 3]);
    // The backoff really was waited: each retry starts no earlier than its notBefore.
    const timeline = h.daemon.store.timeline(id);
    for (const [i, e] of timeline.entries()) {
      if (e.type !== "RetryScheduled") continue;
      const next = timeline.slice(i).find((x) => x.type === "AttemptStarted");
      assert.ok(next && Date.parse(next.recordedAt) >= Date.parse((e.data as { notBefore: string }).notBefore), "retry started before its backoff elapsed");
    }
  });

  it("dead-letters a video whose attempts run out; `vqd list --state dead` shows it; `vqd retry` completes it", async () => {
    const [id] = (await h.enqueue(1, { pipeline: "redrive" })) as [string];
    await h.waitState(id, "dead");
    assert.equal(countOf(h.daemon, id, "AttemptStarted"), 3);
    assert.equal(countOf(h.daemon, id, "AttemptFailed"), 3);
    assert.equal(countOf(h.daemon, id, "RetryScheduled"), 2);
    assert.equal(countOf(h.daemon, id, "VideoDeadLettered"), 1);
    assert.match(h.daemon.store.get(id)?.lastError?.message ?? "", /exited with code 1: run 3/);

    // The CLI talks to the running daemon over the API.
    const list = await h.env.cli(["list", "--state", "dead", "--json"]);
    assert.equal(list.code, 0, list.stderr);
    const dead = JSON.parse(list.stdout) as VideoJson[];
    const mine = dead.find((v) => v.id === id);
    assert.ok(mine, `list --state dead does not show ${id}: ${list.stdout}`);
    assert.equal(mine.state, "dead");
    assert.ok(dead.every((v) => v.state === "dead"));

    const retry = await h.env.cli(["retry", id]);
    assert.equal(retry.code, 0, retry.stderr);
    assert.match(retry.stdout, new RegExp(`${id}: queued`));
    await h.waitState(id, "completed");
    const timeline = h.daemon.store.timeline(id);
    const requeued = timeline.findIndex((e) => e.type === "VideoRequeued");
    assert.ok(requeued > 0);
    // Attempts restart after a redrive, and the redriven attempt succeeded.
    assert.deepEqual(
      timeline.slice(requeued + 1).map((e) => [e.type, (e.data as { attempt?: number }).attempt]),
      [
        ["AttemptStarted", 1],
        ["StepCompleted", 1],
        ["VideoCompleted", undefined],
      ],
    );
    assert.equal(countOf(h.daemon, id, "VideoCompleted"), 1);
    assert.equal(h.daemon.store.get(id)?.attempts, 1);
  });

  it("dead-letters a fatal failure after one attempt", async () => {
    const [id] = (await h.enqueue(1, { pipeline: "fatal" })) as [string];
    await h.waitState(id, "dead");
    assert.deepEqual(types(id), ["VideoEnqueued", "AttemptStarted", "AttemptFailed", "VideoDeadLettered"]);
    const v = h.daemon.store.get(id);
    assert.equal(v?.attempts, 1);
    assert.equal(v?.lastError?.retryable, false);
  });

  it("resumes a retried video at the step that failed: completed steps never run again", async () => {
    const [id] = (await h.enqueue(1, { pipeline: "resume" })) as [string];
    await h.waitState(id, "completed");
    const steps = h.daemon.store
      .timeline(id)
      .filter((e) => e.type === "StepCompleted")
      .map((e) => {
        const d = e.data as { index: number; step: string; attempt: number };
        return [d.index, d.step, d.attempt];
      });
    assert.deepEqual(steps, [
      [0, "noop", 1],
      [1, "sleep", 2],
    ]);
    assert.equal(countOf(h.daemon, id, "AttemptStarted"), 2);
    assert.equal(countOf(h.daemon, id, "VideoCompleted"), 1);
  });
});
