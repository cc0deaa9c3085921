/**
 * The worker pool and the priority puller against a real nats-server, with a scripted reporter
 * in place of the store: which message a free worker takes, and how each outcome settles the
 * message (ack, nak at once, nak later).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { JetStreamJobQueue, PriorityPuller, subjects, type JobMessage } from "../../src/bus/index.js";
import { LANES, type Lane } from "../../src/domain/index.js";
import { StepRegistry } from "../../src/pipeline/index.js";
import { silentLogger } from "../../src/shared/logger.js";
import { WorkerPool, type JobReporter, type PipelineStepConfig, type ReportOutcome, type StartOutcome } from "../../src/workers/index.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { waitFor } from "./daemon-harness.js";

interface Started {
  readonly videoId: string;
  readonly redelivered: boolean;
}

/** A reporter that records calls; `onStart`/`onStep` decide the answers (default: ok). */
class ScriptedReporter implements JobReporter {
  readonly starts: Started[] = [];
  readonly steps: string[] = [];
  readonly fails: string[] = [];
  onStart: (job: JobMessage) => StartOutcome | Promise<StartOutcome> = (job) => ({ ok: true, started: started(job, this.pipelines.get(job.videoId) ?? "noop") });
  onStep: (videoId: string) => ReportOutcome | Promise<ReportOutcome> = () => ({ ok: true });
  readonly pipelines = new Map<string, string>();

  start(job: JobMessage, _worker: string, redelivered: boolean): Promise<StartOutcome> {
    this.starts.push({ videoId: job.videoId, redelivered });
    return Promise.resolve(this.onStart(job));
  }
  stepCompleted(videoId: string): Promise<ReportOutcome> {
    this.steps.push(videoId);
    return Promise.resolve(this.onStep(videoId));
  }
  failed(videoId: string): Promise<ReportOutcome> {
    this.fails.push(videoId);
    return Promise.resolve({ ok: true });
  }
}

const PIPELINES: Record<string, PipelineStepConfig[]> = {
  noop: [{ step: "noop", options: {} }],
  long: [{ step: "sleep", options: { ms: 10_000 } }],
};

function started(job: JobMessage, pipeline: string) {
  const steps = (PIPELINES[pipeline] ?? []).map((s) => s.name ?? s.step);
  return { attempt: 1, path: `/videos/${job.videoId}.mp4`, pipeline, steps, nextStep: 0, previous: {} };
}

describe("worker pool over JetStream", () => {
  let srv: TestNatsServer;
  let nc: NatsConnection;
  let n = 0;
  before(async () => {
    srv = await startNatsServer();
    nc = await connect({ servers: srv.url });
  });
  after(async () => {
    await nc?.close();
    await srv?.stop();
  });

  /** A fresh stream per test, so tests never see each other's messages. */
  async function setup(options: { count: number; prefetch?: number; prefetchMax?: number }) {
    const prefix = `wp${++n}`;
    const queue = new JetStreamJobQueue(nc, { subjects: subjects(prefix), stream: `WP${n}`, ackWaitMs: 5000, maxDeliver: 0, duplicateWindowMs: 60_000 });
    await queue.ensure();
    const reporter = new ScriptedReporter();
    const pools: WorkerPool[] = [];
    const pullers = new Map<WorkerPool, PriorityPuller>();
    const newPool = (): WorkerPool => {
      const puller = new PriorityPuller(queue, { lanes: LANES, prefetch: options.prefetch ?? 2, prefetchMax: options.prefetchMax, heartbeatMs: 1000, expiresMs: 5000 });
      const pool = new WorkerPool({
        count: options.count,
        puller,
        reporter,
        steps: new StepRegistry(),
        pipeline: (name) => PIPELINES[name],
        outputDir: "/nonexistent",
        heartbeatMs: 1000,
        logger: silentLogger,
      });
      pools.push(pool);
      pullers.set(pool, puller);
      return pool;
    };
    let seq = 0;
    const publish = async (lane: Lane, videoId: string, pipeline = "noop", msgId = `${videoId}.1`) => {
      reporter.pipelines.set(videoId, pipeline);
      const [o] = await queue.publish([{ msgId, job: { videoId, dispatch: 1, lane } }]);
      assert.ok(o?.ok, `publish failed: ${o && !o.ok ? o.error.message : "?"}`);
      return ++seq;
    };
    const publishMany = async (lane: Lane, ids: readonly string[], pipeline = "noop") => {
      for (const id of ids) reporter.pipelines.set(id, pipeline);
      const out = await queue.publish(ids.map((id) => ({ msgId: `${id}.1`, job: { videoId: id, dispatch: 1, lane } })));
      assert.ok(out.every((o) => o.ok));
    };
    const pending = async (): Promise<number> => Object.values(await queue.laneCounts()).reduce((t, l) => t + l.waiting + l.inFlight, 0);
    const closeAll = () => Promise.all(pools.map((p) => p.close(200)));
    const held = (pool: WorkerPool): number => Math.max(...Object.values(pullers.get(pool)?.held() ?? {}));
    const holdLimit = (pool: WorkerPool): number => pullers.get(pool)?.holdLimit ?? 0;
    return { queue, reporter, newPool, publish, publishMany, pending, closeAll, held, holdLimit };
  }

  it("takes a backlog by strict lane priority and FIFO within each lane", async () => {
    const t = await setup({ count: 1 });
    try {
      for (const lane of ["low", "normal", "high"] as const) for (let i = 0; i < 3; i++) await t.publish(lane, `${lane}${i}`);
      t.newPool().start();
      await waitFor(() => t.reporter.starts.length === 9, 5000, "nine starts");
      assert.deepEqual(
        t.reporter.starts.map((s) => s.videoId),
        ["high0", "high1", "high2", "normal0", "normal1", "normal2", "low0", "low1", "low2"],
      );
      await waitFor(async () => (await t.pending()) === 0, 2000, "all messages acked");
    } finally {
      await t.closeAll();
    }
  });

  it("acks and drops a job the store refuses, without running it", async () => {
    const t = await setup({ count: 1 });
    try {
      t.reporter.onStart = () => ({ ok: false, reason: "video is cancelled" });
      t.newPool().start();
      await t.publish("normal", "refused");
      await waitFor(async () => t.reporter.starts.length === 1 && (await t.pending()) === 0, 3000, "the refused job to be acked");
      assert.deepEqual(t.reporter.steps, []);
    } finally {
      await t.closeAll();
    }
  });

  it("does not ack a job whose report could not be stored: it comes back and is redone", async () => {
    const t = await setup({ count: 1 });
    try {
      let calls = 0;
      t.reporter.onStep = () => {
        if (++calls === 1) throw new Error("daemon unavailable");
        return { ok: true };
      };
      t.newPool().start();
      await t.publish("normal", "unstored");
      await waitFor(() => t.reporter.steps.length === 2, 5000, "the job to be redelivered and redone").catch((e: Error) => {
        throw new Error(`${e.message}; reporter saw ${JSON.stringify({ starts: t.reporter.starts, steps: t.reporter.steps, fails: t.reporter.fails })}`);
      });
      assert.deepEqual(t.reporter.starts, [
        { videoId: "unstored", redelivered: false },
        { videoId: "unstored", redelivered: true },
      ]);
      await waitFor(async () => (await t.pending()) === 0, 2000, "the message to be acked after the stored report");
    } finally {
      await t.closeAll();
    }
  });

  it("drops a second copy of a job it is running, and stops a cancelled step at once with an ack", async () => {
    const t = await setup({ count: 2 });
    try {
      const pool = t.newPool();
      pool.start();
      await t.publish("normal", "busy", "long");
      await waitFor(() => pool.running().some((r) => r.videoId === "busy"), 3000, "the long job to run");
      await t.publish("normal", "busy", "long", "busy.copy");
      await waitFor(async () => (await t.pending()) === 1, 3000, "the copy to be acked and dropped");
      assert.equal(t.reporter.starts.length, 1, "the copy never reached the store");
      const t0 = Date.now();
      assert.equal(pool.cancel("busy"), true);
      await waitFor(() => pool.busy === 0, 1000, "the cancelled step to stop");
      assert.ok(Date.now() - t0 < 1000);
      await waitFor(async () => (await t.pending()) === 0, 2000, "the cancelled job's message to be acked");
      assert.deepEqual(t.reporter.fails, [], "a cancel is not reported as a failure");
      assert.equal(pool.cancel("busy"), false);
    } finally {
      await t.closeAll();
    }
  });

  it("on close past the deadline, aborts the running step and hands its message back as a redelivery", async () => {
    const t = await setup({ count: 1 });
    const first = t.newPool();
    first.start();
    await t.publish("normal", "interrupted", "long");
    await waitFor(() => first.busy === 1, 3000, "the long job to run");
    const t0 = Date.now();
    await first.close(200);
    assert.ok(Date.now() - t0 < 2000, `close took ${Date.now() - t0} ms`);
    assert.deepEqual(t.reporter.fails, [], "a shutdown is not reported as a failure");
    // Another node takes it as a redelivery (so the store lets it take over the running video),
    // after the short hand-back delay rather than the 5 s ack wait.
    t.reporter.pipelines.set("interrupted", "noop");
    const second = t.newPool();
    second.start();
    try {
      await waitFor(() => t.reporter.starts.length === 2, 4500, "the job to be taken again");
      assert.deepEqual(t.reporter.starts[1], { videoId: "interrupted", redelivered: true });
      await waitFor(async () => (await t.pending()) === 0, 2000, "the message to be acked");
    } finally {
      await t.closeAll();
    }
  });

  it("acks a finished job only once its reports are durable, and hands it back when they are rolled back", async () => {
    const t = await setup({ count: 1 });
    try {
      const commits: { resolve: () => void; reject: (e: Error) => void }[] = [];
      t.reporter.onStep = () => {
        const durable = new Promise<void>((resolve, reject) => commits.push({ resolve, reject }));
        durable.catch(() => undefined);
        return { ok: true, durable };
      };
      const pool = t.newPool();
      pool.start();
      await t.publish("normal", "wb1");
      await waitFor(() => commits.length === 1 && pool.busy === 0, 3000, "the step to be reported and the worker freed");
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await t.pending(), 1, "not acked while the report is not durable");
      commits[0]?.resolve();
      await waitFor(async () => (await t.pending()) === 0, 2000, "the ack after the commit");

      await t.publish("normal", "wb2");
      await waitFor(() => commits.length === 2, 3000, "the second job's report");
      commits[1]?.reject(new Error("rolled back"));
      // Handed back (nak, 1 s), taken again as a redelivery and, durable this time, acked.
      await waitFor(() => commits.length === 3, 4000, "the rolled-back job to come back");
      assert.deepEqual(t.reporter.starts.at(-1), { videoId: "wb2", redelivered: true });
      commits[2]?.resolve();
      await waitFor(async () => (await t.pending()) === 0, 2000, "the redone job to be acked");
    } finally {
      await t.closeAll();
    }
  });

  it("holds more messages while jobs finish fast (up to prefetchMax), and only prefetch while they are slow", async () => {
    const fast = await setup({ count: 1, prefetch: 2, prefetchMax: 40 });
    try {
      // 2 ms jobs: fast (hundreds a second, far above prefetch per 100 ms of work) yet slow enough
      // that 600 of them span several of the puller's 250 ms rate windows on any machine; no-op
      // jobs could all be done before the first window closes.
      PIPELINES.quick = [{ step: "sleep", options: { ms: 2 } }];
      await fast.publishMany("normal", Array.from({ length: 600 }, (_, i) => `fast${i}`), "quick");
      const pool = fast.newPool();
      let most = 0;
      let limit = 0;
      const sample = setInterval(() => {
        most = Math.max(most, fast.held(pool));
        limit = Math.max(limit, fast.holdLimit(pool));
      }, 2);
      pool.start();
      await waitFor(() => fast.reporter.steps.length === 600, 20_000, "600 fast jobs");
      clearInterval(sample);
      assert.ok(limit > 2, `the hold grew past prefetch (to ${limit})`);
      assert.ok(limit <= 40 && most <= 40, `never more than prefetchMax (limit ${limit}, held ${most})`);
      await waitFor(async () => (await fast.pending()) === 0, 3000, "all acked");
    } finally {
      await fast.closeAll();
    }
    const slow = await setup({ count: 1, prefetch: 2, prefetchMax: 40 });
    try {
      PIPELINES.nap = [{ step: "sleep", options: { ms: 150 } }];
      await slow.publishMany("normal", Array.from({ length: 8 }, (_, i) => `slow${i}`), "nap");
      const pool = slow.newPool();
      let most = 0;
      let limit = 0;
      const sample = setInterval(() => {
        most = Math.max(most, slow.held(pool));
        limit = Math.max(limit, slow.holdLimit(pool));
      }, 5);
      pool.start();
      await waitFor(() => slow.reporter.steps.length === 8, 10_000, "8 slow jobs");
      clearInterval(sample);
      assert.equal(limit, 2, "slow jobs: the hold stays at prefetch");
      assert.ok(most <= 2, `slow jobs: held at most prefetch (held ${most})`);
    } finally {
      await slow.closeAll();
    }
  });
});
