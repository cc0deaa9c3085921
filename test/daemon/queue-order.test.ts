/**
 * Invariant 5: strict priority between lanes on a node, FIFO within a lane — through the whole
 * daemon (API -> store -> outbox relay -> JetStream lanes -> priority puller -> worker).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Lane } from "../../src/domain/index.js";
import { positionOf, startHarness, waitFor, type Harness } from "../workers/daemon-harness.js";

describe("queue order (one worker)", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      extra: {
        VQD_WORKERS__COUNT: "1",
        // Strict priority holds with any prefetch: the puller keeps a separate buffer per lane and
        // a free worker always takes the head of the highest non-empty buffer, so low messages held
        // locally never stand in front of a high one. Prefetch only decides how many messages per
        // lane this node withholds from other nodes; 1 keeps the test's picture simple (at most one
        // message held per lane while the single worker is busy).
        VQD_WORKERS__PREFETCH: "1",
        VQD_PIPELINES__SLOW__STEPS: "[{step: sleep, options: {ms: 300}}]",
        // The first job: long enough for the other lanes to fill while it runs, even on a busy machine.
        VQD_PIPELINES__FIRST__STEPS: "[{step: sleep, options: {ms: 1000}}]",
      },
    });
  });
  after(async () => {
    await h?.close();
  });

  const lanes = async (): Promise<Record<Lane, { waiting: number; inFlight: number }>> =>
    ((await h.daemon.status()).nats as { lanes: Record<Lane, { waiting: number; inFlight: number }> }).lanes;

  it("runs a high job next, then every normal job, before any low one", async () => {
    const [first] = (await h.enqueue(1, { priority: "low", pipeline: "first" })) as [string];
    const low = [first, ...(await h.enqueue(4, { priority: "low", pipeline: "slow" }))];
    await waitFor(() => h.daemon.store.get(first)?.state === "running", 5000, "the first low job to start");
    const normal = await h.enqueue(5, { priority: "normal", pipeline: "slow" });
    // Both lanes are filled (the messages are in JetStream) before the high job arrives.
    await waitFor(async () => {
      const l = await lanes();
      return l.normal.waiting + l.normal.inFlight === 5 && l.low.waiting + l.low.inFlight === 5;
    }, 5000, "the normal and low lanes to hold their jobs");
    const [high] = (await h.enqueue(1, { priority: "high", pipeline: "slow" })) as [string];
    assert.equal(h.daemon.store.get(first)?.state, "running", "the high job must arrive while the first job runs (make the slow step longer?)");

    const all = [...low, ...normal, high];
    await waitFor(() => all.every((id) => h.daemon.store.get(id)?.state === "completed"), 15_000, "all 11 jobs to complete");

    const started = [...all].sort((a, b) => positionOf(h.daemon, a, "AttemptStarted") - positionOf(h.daemon, b, "AttemptStarted"));
    const label = (id: string): string => (id === high ? "high" : normal.includes(id) ? `normal${normal.indexOf(id)}` : `low${low.indexOf(id)}`);
    assert.deepEqual(started.map(label), ["low0", "high", "normal0", "normal1", "normal2", "normal3", "normal4", "low1", "low2", "low3", "low4"]);
    // One worker: each job starts only after the previous one completed.
    for (let i = 1; i < started.length; i++) {
      assert.ok(positionOf(h.daemon, started[i - 1] as string, "VideoCompleted") < positionOf(h.daemon, started[i] as string, "AttemptStarted"));
    }
  });

  it("completes 20 jobs of one lane in the order they were enqueued", async () => {
    // Two requests: order holds within one batch and across batches.
    const ids = [...(await h.enqueue(10, { priority: "normal", pipeline: "noop" })), ...(await h.enqueue(10, { priority: "normal", pipeline: "noop" }))];
    await waitFor(() => ids.every((id) => h.daemon.store.get(id)?.state === "completed"), 10_000, "20 jobs to complete");
    const completed = ids.map((id) => positionOf(h.daemon, id, "VideoCompleted"));
    const started = ids.map((id) => positionOf(h.daemon, id, "AttemptStarted"));
    assert.deepEqual(completed, [...completed].sort((a, b) => a - b), "VideoCompleted positions follow enqueue order");
    assert.deepEqual(started, [...started].sort((a, b) => a - b), "AttemptStarted positions follow enqueue order");
    // Each ran once.
    for (const id of ids) assert.equal(h.daemon.store.timeline(id).filter((e) => e.type === "AttemptStarted").length, 1);
  });
});
