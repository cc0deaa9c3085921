/**
 * `vqd worker` on its own: the daemon runs with `start --no-workers` (store, relay, API) and a
 * separate worker process pulls the jobs, sending every report to the daemon over NATS
 * request/reply. A job message is acked only once the daemon has stored the report.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ApiReplyError, type EventJson, type VideoJson } from "../../src/api/index.js";
import { JetStreamJobQueue } from "../../src/bus/index.js";
import { NatsReporter } from "../../src/workers/index.js";
import type { DaemonProcess } from "../support/vqd-env.js";
import { startHarness, waitFor, type Harness } from "../workers/daemon-harness.js";

type Shown = VideoJson & { timeline: EventJson[] };

describe("remote worker process", () => {
  let h: Harness;
  let daemon: DaemonProcess | undefined;
  let worker: DaemonProcess | undefined;
  let queue: JetStreamJobQueue;

  const stop = async (p: DaemonProcess | undefined): Promise<void> => {
    if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
    p.child.kill("SIGTERM");
    await p.exited();
  };

  before(async () => {
    h = await startHarness({
      daemon: false,
      extra: {
        VQD_LOGGING__LEVEL: "info",
        VQD_WORKERS__COUNT: "2",
        VQD_API__REQUESTTIMEOUTMS: "1000",
        VQD_PIPELINES__SLOW__STEPS: "[{step: sleep, options: {ms: 1000}}]",
      },
    });
    queue = new JetStreamJobQueue(h.nc, {
      subjects: h.subjects,
      stream: h.env.config().nats.stream,
      ackWaitMs: 5000,
      maxDeliver: 0,
      duplicateWindowMs: 120_000,
    });
    daemon = h.env.spawnDaemon(["start", "--no-workers"]);
    await daemon.ready();
    worker = h.env.spawnDaemon(["worker"]);
    await worker.ready();
  });
  after(async () => {
    await stop(worker);
    await stop(daemon);
    await h?.close();
  });

  const show = (id: string) => h.api.call<"show", Shown>("show", { id });
  const laneTotal = async (): Promise<number> => Object.values(await queue.laneCounts()).reduce((n, l) => n + l.waiting + l.inFlight, 0);

  it("completes jobs through the remote worker; the daemon stores its reports", async () => {
    const status = await h.api.call<"status", { workers: { size: number } }>("status", {});
    assert.equal(status.workers.size, 0, "the daemon runs no workers");
    const ids = await h.enqueue(6, { pipeline: "noop" });
    await waitFor(() => ids.every((id) => h.events.some((e) => e.videoId === id && e.type === "VideoCompleted")), 10_000, "the jobs to complete");
    const workerPid = worker?.child.pid;
    for (const id of ids) {
      const v = await show(id);
      assert.equal(v.state, "completed");
      const started = v.timeline.filter((e) => e.type === "AttemptStarted");
      assert.equal(started.length, 1);
      assert.match((started[0]?.data as { worker: string }).worker, new RegExp(`:${workerPid}/[12]$`), "run by the worker process");
      assert.ok(v.timeline.filter((e) => e.type !== "VideoEnqueued").every((e) => e.metadata.source === "worker"));
    }
    await waitFor(async () => (await laneTotal()) === 0, 2000, "every message to be acked");
  });

  it("does not ack a job whose report the daemon could not store; it runs again once the daemon is back", async () => {
    const [id] = (await h.enqueue(1, { pipeline: "slow" })) as [string];
    await waitFor(() => h.events.some((e) => e.videoId === id && e.type === "AttemptStarted"), 5000, "the worker to start the job");
    // The daemon goes away while the step runs: the worker cannot report the step's result.
    await stop(daemon);
    await waitFor(() => /could not record a job's result/.test(worker?.output() ?? ""), 5000, "the worker's report to fail");
    assert.equal(await laneTotal(), 1, "the message is still in the stream: not acked");

    daemon = h.env.spawnDaemon(["start", "--no-workers"]);
    await daemon.ready();
    await waitFor(() => h.events.some((e) => e.videoId === id && e.type === "VideoCompleted"), 10_000, "the job to complete after the daemon came back");
    const v = await show(id);
    assert.equal(v.state, "completed");
    assert.deepEqual(
      v.timeline.map((e) => [e.type, (e.data as { attempt?: number }).attempt]),
      [
        ["VideoEnqueued", undefined],
        ["AttemptStarted", 1],
        ["AttemptStarted", 2],
        ["StepCompleted", 2],
        ["VideoCompleted", undefined],
      ],
    );
    await waitFor(async () => (await laneTotal()) === 0, 2000, "the message to be acked");
  });

  it("a second start of a video another worker is running is answered busy, and the remote reporter leaves that message alone", async () => {
    const [id] = (await h.enqueue(1, { pipeline: "slow" })) as [string];
    await waitFor(() => h.events.some((e) => e.videoId === id && e.type === "AttemptStarted"), 5000, "the worker to start the job");
    // A fresh video's first (and only) dispatch is 1.
    const err = await h.api.call("report", { kind: "start", videoId: id, dispatch: 1, lane: "normal", worker: "other/1", redelivered: false }).then(
      () => assert.fail("a duplicate start was accepted"),
      (e: unknown) => e as ApiReplyError,
    );
    assert.ok(err instanceof ApiReplyError);
    assert.equal(err.code, "busy");
    const outcome = await new NatsReporter(h.api).start({ videoId: id, dispatch: 1, lane: "normal" }, "other/1", false);
    assert.deepEqual({ ok: outcome.ok, busy: !outcome.ok && outcome.busy }, { ok: false, busy: true });
    await waitFor(() => h.events.some((e) => e.videoId === id && e.type === "VideoCompleted"), 10_000, "the running job to complete");
    const after = await show(id);
    assert.equal(after.timeline.filter((e) => e.type === "AttemptStarted").length, 1, "the duplicate never started an attempt");
  });
});
