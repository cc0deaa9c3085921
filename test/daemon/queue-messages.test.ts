/**
 * Messages are hints; the store decides (invariants 3 and 4): a cancelled running job stops at
 * once, copies of a job message run it once, and messages that are not vqd jobs are dropped
 * without stopping the flow.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { JetStreamJobQueue } from "../../src/bus/index.js";
import type { Lane } from "../../src/domain/index.js";
import { countOf, positionOf, startHarness, waitFor, type Harness } from "../workers/daemon-harness.js";

describe("job messages (two workers)", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      extra: {
        VQD_WORKERS__COUNT: "2",
        VQD_PIPELINES__LONG__STEPS: "[{step: sleep, options: {ms: 10000}}]",
        VQD_PIPELINES__SHORT__STEPS: "[{step: sleep, options: {ms: 500}}]",
      },
    });
  });
  after(async () => {
    await h?.close();
  });

  const laneTotal = async (lane: Lane): Promise<number> => {
    const l = ((await h.daemon.status()).nats as { lanes: Record<Lane, { waiting: number; inFlight: number }> }).lanes[lane];
    return l.waiting + l.inFlight;
  };
  const running = (id: string): boolean => h.daemon.pool?.running().some((r) => r.videoId === id) ?? false;
  const recordedAt = (id: string, type: string): number => {
    const e = h.daemon.store.timeline(id).find((ev) => ev.type === type);
    assert.ok(e, `${id} has no ${type}`);
    return Date.parse(e.recordedAt);
  };

  it("`vqd cancel` stops a running step within a second and frees its worker", async () => {
    const [a1, a2] = (await h.enqueue(2, { pipeline: "long" })) as [string, string];
    const [b] = (await h.enqueue(1, { pipeline: "noop" })) as [string];
    await waitFor(() => running(a1) && running(a2), 5000, "both long jobs to run");
    assert.equal(h.daemon.store.get(b)?.state, "queued", "both workers are busy, so b waits");

    const cancel = await h.env.cli(["cancel", a1]);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, new RegExp(`${a1}: cancelled`));
    const answered = Date.now();
    await waitFor(() => !running(a1), 1000, "the cancelled step to stop");
    assert.ok(Date.now() - answered < 1000);
    await h.waitState(b, "completed", 2000);
    // The freed worker took the next job well within a second of the cancellation.
    const gap = recordedAt(b, "AttemptStarted") - recordedAt(a1, "VideoCancelled");
    assert.ok(gap >= 0 && gap < 1000, `next job started ${gap} ms after the cancel`);
    assert.ok(positionOf(h.daemon, a1, "VideoCancelled") < positionOf(h.daemon, b, "AttemptStarted"));

    const v = h.daemon.store.get(a1);
    assert.equal(v?.state, "cancelled");
    assert.equal(countOf(h.daemon, a1, "VideoCompleted"), 0);
    assert.equal(countOf(h.daemon, a1, "StepCompleted"), 0);
    assert.equal(countOf(h.daemon, a1, "AttemptFailed"), 0, "a cancel is not a failure");
    // Cancel the other one too; both messages are then settled (acked), not left to be
    // redelivered after the ack wait.
    assert.ok(running(a2));
    const c2 = await h.env.cli(["cancel", a2]);
    assert.equal(c2.code, 0, c2.stderr);
    await waitFor(() => !running(a2), 1000, "the second cancelled step to stop");
    await waitFor(async () => (await laneTotal("normal")) === 0, 2000, "the normal lane to be empty");
    assert.equal(h.daemon.pool?.busy, 0);
  });

  it("runs a job once when its message is published again under other message ids", async () => {
    const [x] = (await h.enqueue(1, { pipeline: "short" })) as [string];
    const queue = new JetStreamJobQueue(h.nc, {
      subjects: h.subjects,
      stream: h.env.config().nats.stream,
      ackWaitMs: 5000,
      maxDeliver: 0,
      duplicateWindowMs: 120_000,
    });
    const job = { videoId: x, dispatch: 1, lane: "normal" as const };
    // Two copies while the job runs: the idle second worker takes them and drops them.
    await waitFor(() => running(x), 5000, "x to run");
    const during = await queue.publish([
      { msgId: `${x}.copy-a`, job },
      { msgId: `${x}.copy-b`, job },
    ]);
    assert.deepEqual(
      during.map((o) => o.ok && !o.duplicate),
      [true, true],
      "different Nats-Msg-Ids are not deduplicated by the stream",
    );
    await waitFor(async () => (await laneTotal("normal")) === 1, 2000, "the copies to be dropped while x runs");
    assert.ok(running(x));
    await h.waitState(x, "completed", 3000);
    // Two more after it completed: the store says it is done, so they are dropped too.
    const later = await queue.publish([
      { msgId: `${x}.copy-c`, job },
      { msgId: `${x}.copy-d`, job },
    ]);
    assert.ok(later.every((o) => o.ok));
    await waitFor(async () => (await laneTotal("normal")) === 0, 2000, "the late copies to be dropped");
    assert.equal(countOf(h.daemon, x, "AttemptStarted"), 1);
    assert.equal(countOf(h.daemon, x, "VideoCompleted"), 1);
    assert.equal(h.daemon.store.get(x)?.state, "completed");
  });

  it("drops messages that are not vqd jobs and keeps the jobs flowing", async () => {
    const js = jetstream(h.nc);
    const subject = h.subjects.job("normal");
    await js.publish(subject, new Uint8Array([0xff, 0x00, 0xfe, 0x13, 0x37]));
    await js.publish(subject, new TextEncoder().encode(JSON.stringify({ id: 5, d: "x" })));
    // Well-formed, but for a video the store has never heard of.
    await js.publish(subject, new TextEncoder().encode(JSON.stringify({ id: "00000000000000000000", d: 1, l: "normal" })));
    const ids = await h.enqueue(5, { pipeline: "noop" });
    await waitFor(() => ids.every((id) => h.daemon.store.get(id)?.state === "completed"), 5000, "the jobs after the garbage to complete");
    // The garbage was settled for good, not left to be redelivered forever.
    await waitFor(async () => (await laneTotal("normal")) === 0, 2000, "the garbage to leave the stream");
    assert.equal(h.daemon.store.get("00000000000000000000"), null);
  });
});
