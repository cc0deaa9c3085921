/**
 * The advanced suite: concurrent processing through the real workers, memory-leak detection over
 * repeated create/close of the components, an event storm, a database stress run and a queue
 * stress run — the reference app's advanced suite, on the real components.
 */
import { join } from "node:path";
import { JetStreamJobQueue, PriorityPuller, subjects as makeSubjects, type JobToPublish } from "../bus/index.js";
import { jobQueueOptions, pullerOptions } from "../daemon/nats-setup.js";
import { LANES } from "../domain/index.js";
import { openDatabase, VideoStore } from "../store/index.js";
import { laneOf } from "./basic.js";
import { makeClips, PROFILE_CLIP } from "./clips.js";
import { InProcessDaemon } from "./inproc.js";
import { slowed } from "./inject.js";
import { forceGc, MB, median, min, now, slope, throwIfAborted, turn, within } from "./measure.js";
import { MixedWorkload } from "./stress.js";
import { makeEvents, rawNats, storm, viaEventBus, type StormResult } from "./storm.js";
import { fig, fmt, type StepDef } from "./suite.js";

export interface AdvancedPlan {
  readonly concurrentVideos: number;
  /** Distinct clips made for a media pipeline (videos cycle through them). */
  readonly clips: number;
  readonly leakIterations: number;
  readonly leakWarmup: number;
  readonly leakSampleEvery: number;
  readonly stormEvents: number;
  readonly stormReps: number;
  readonly dbStressOps: number;
  readonly queueStressJobs: number;
  readonly durableJobs: number;
}

/** The reference app's counts. */
export const ADVANCED_FULL: AdvancedPlan = {
  concurrentVideos: 100,
  clips: 10,
  leakIterations: 100,
  leakWarmup: 20,
  leakSampleEvery: 10,
  stormEvents: 100_000,
  stormReps: 3,
  dbStressOps: 10_000,
  queueStressJobs: 10_000,
  durableJobs: 10_000,
};

export const ADVANCED_QUICK: AdvancedPlan = {
  concurrentVideos: 20,
  clips: 3,
  leakIterations: 10,
  leakWarmup: 2,
  leakSampleEvery: 2,
  stormEvents: 10_000,
  stormReps: 1,
  dbStressOps: 1000,
  queueStressJobs: 1000,
  durableJobs: 1000,
};

const REF = {
  concurrentS: 2.177,
  videosPerS: 45.9,
  leakStartMB: 23.83,
  leakEndMB: 23.88,
  leakKbPerIter: 0.52,
  stormS: 0.334,
  stormPerS: 299_424,
  stressS: 12.986,
  stressOpsS: 770,
  stressMsPerOp: 1.299,
  queueAddS: 0.038,
  queueProcessS: 2.055,
  queueJobsS: 4_777,
};

/** Steps that need no input file. */
const FILELESS = new Set(["noop", "sleep"]);

export function advancedSteps(plan: AdvancedPlan, options: { pipeline?: string } = {}): StepDef[] {
  const pipeline = options.pipeline ?? "noop";

  const concurrent: StepDef = {
    id: "concurrent",
    title: `concurrent processing (${plan.concurrentVideos} videos, pipeline ${pipeline})`,
    async run(ctx) {
      const spec = ctx.config.pipelines[pipeline];
      if (!spec) throw new Error(`unknown pipeline ${JSON.stringify(pipeline)} (known: ${Object.keys(ctx.config.pipelines).join(", ")})`);
      // A profiling run must not reach outside systems: it would notify them of videos that do not exist.
      const hooks = spec.steps.filter((s) => s.step === "webhook");
      if (hooks.length > 0) throw new Error(`pipeline ${JSON.stringify(pipeline)} has a webhook step (${hooks.map((h) => h.name ?? h.step).join(", ")}): the profiler does not call webhooks; choose a pipeline without one`);
      const n = plan.concurrentVideos;
      const config = await ctx.scratchConfig("concurrent", { defaultPipeline: pipeline });
      const media = spec.steps.some((s) => !FILELESS.has(s.step));
      const d = await InProcessDaemon.start(ctx, config);
      try {
        let files: string[];
        if (media) {
          ctx.progress.advance(0, `making ${Math.min(n, plan.clips)} clips with ffmpeg`);
          files = await makeClips(ctx.config.transcode.ffmpeg, config.allowedRoots[0] as string, Math.min(n, plan.clips), PROFILE_CLIP, ctx.signal);
        } else {
          files = await d.placeholders(Math.min(n, 10));
        }
        const paths = Array.from({ length: n }, (_, i) => files[i % files.length] as string);
        ctx.progress.advance(0.1, "processing");
        const t0 = now();
        await d.enqueue(paths, { pipeline });
        const enqueueMs = now() - t0;
        await d.waitFinished(n, { signal: ctx.signal, timeoutMs: 60_000 + n * (media ? 20_000 : 200) });
        const lastAt = Math.max(...[...d.finished().values()].map((f) => f.at));
        const totalS = (lastAt - t0) / 1000;
        await d.verifyCompleted(n);
        const steps = spec.steps.map((s) => s.name ?? s.step).join(" -> ");
        return {
          method:
            `an in-process daemon on a scratch config (SQLite file, own stream, ${config.workers.count} workers, pipeline "${pipeline}": ${steps}); ${n} videos enqueued in one request on <prefix>.api.enqueue; ` +
            `the clock runs to the last VideoCompleted event; then every video is checked completed in the store.` +
            (media ? ` Input: ${files.length} clips of ${PROFILE_CLIP.seconds} s ${PROFILE_CLIP.width}x${PROFILE_CLIP.height} H.264/AAC made with ffmpeg lavfi, cycled.` : " Input: placeholder files (the pipeline reads none)."),
          figures: [
            fig("concurrent.total_s", `${n} videos, enqueue to last completed`, totalS, "s", "lower", { reference: REF.concurrentS }),
            fig("concurrent.videos_s", "concurrent processing, videos per second", n / totalS, "videos/s", "higher", { reference: REF.videosPerS, headline: true }),
            fig("concurrent.enqueue_ms", "enqueue request accepted", enqueueMs, "ms", "lower"),
            fig("concurrent.workers", "workers", config.workers.count, "", "none"),
          ],
          notes: [
            `Each video is durable: recorded in SQLite, dispatched through JetStream, every step's result stored before the job is acked. The reference app's 45.9 videos/s was simulated processing in memory.`,
          ],
          summary: `${n} videos in ${fmt(totalS, 2)} s = ${fmt(n / totalS, 1)} videos/s (${config.workers.count} workers, ${pipeline})`,
        };
      } finally {
        await d.stop();
        await ctx.deleteStreams("concurrent").catch(() => undefined);
      }
    },
  };

  const leak: StepDef = {
    id: "leak",
    title: `memory-leak detection (${plan.leakIterations} create/close iterations)`,
    async run(ctx) {
      const config = await ctx.scratchConfig("leak");
      let input: string | undefined;
      // One iteration: a whole daemon and a client connection, one job through them, then close everything.
      const once = async (): Promise<void> => {
        const d = await InProcessDaemon.start(ctx, config);
        try {
          input ??= (await d.placeholders(1))[0] as string;
          await d.enqueue([input], { pipeline: "noop" });
          await d.waitFinished(1, { signal: ctx.signal, timeoutMs: 30_000 });
        } finally {
          await d.stop();
        }
      };
      for (let i = 0; i < plan.leakWarmup; i++) await once();
      const heap: [number, number][] = [];
      const rss: number[] = [];
      const sample = (i: number): void => {
        forceGc();
        const m = process.memoryUsage();
        heap.push([i, m.heapUsed / 1024]);
        rss.push(m.rss / MB);
      };
      sample(0);
      const t0 = now();
      for (let i = 1; i <= plan.leakIterations; i++) {
        throwIfAborted(ctx.signal);
        await once();
        if (i % plan.leakSampleEvery === 0 || i === plan.leakIterations) sample(i);
        ctx.progress.advance(i / plan.leakIterations, `iteration ${i}`);
      }
      const perIterMs = (now() - t0) / plan.leakIterations;
      const growthKb = slope(heap);
      const threshold = ctx.config.profiler.leakThresholdKbPerIteration;
      const heapStart = (heap[0]?.[1] ?? Number.NaN) / 1024;
      const heapEnd = (heap[heap.length - 1]?.[1] ?? Number.NaN) / 1024;
      return {
        method:
          `${plan.leakIterations} iterations (after ${plan.leakWarmup} untimed) of creating a whole daemon in this process (SQLite store, NATS connection, JetStream stream and consumers, outbox relay, reconciler, API, ${config.workers.count} workers) and a client connection, ` +
          `running one no-op job through them, and closing everything. ` +
          `Heap used after a full GC every ${plan.leakSampleEvery} iterations; growth is the least-squares slope.`,
        figures: [
          fig("leak.growth_kb_per_iteration", "heap growth per iteration", growthKb, "KB", "lower", { reference: REF.leakKbPerIter, headline: true }),
          fig("leak.heap_start_mb", "heap used after GC, first", heapStart, "MB", "none", { reference: REF.leakStartMB }),
          fig("leak.heap_end_mb", "heap used after GC, last", heapEnd, "MB", "lower", { reference: REF.leakEndMB }),
          fig("leak.rss_start_mb", "RSS, first", rss[0] ?? Number.NaN, "MB", "none"),
          fig("leak.rss_end_mb", "RSS, last", rss[rss.length - 1] ?? Number.NaN, "MB", "lower"),
          fig("leak.iteration_ms", "one create/close iteration", perIterMs, "ms", "lower"),
          fig("leak.iterations", "iterations", plan.leakIterations, "", "none"),
        ],
        notes: [
          `Verdict: ${growthKb <= threshold ? "no leak detected" : "POSSIBLE LEAK"} (growth ${fmt(growthKb, 2)} KB/iteration, threshold ${threshold} KB/iteration, profiler.leakThresholdKbPerIteration).`,
          "The reference app's figures are process memory before and after its loop.",
        ],
        summary: `${fmt(growthKb, 2)} KB/iteration heap growth (${growthKb <= threshold ? "no leak" : "POSSIBLE LEAK"}), ${fmt(perIterMs, 0)} ms/iteration`,
      };
    },
  };

  const stormStep: StepDef = {
    id: "storm",
    title: `event storm (${fmt(plan.stormEvents, 0)} events)`,
    async run(ctx) {
      const pub = await ctx.nats.connect(`vqd-profiler-pub:${process.pid}`);
      const sub = await ctx.nats.connect(`vqd-profiler-sub:${process.pid}`);
      try {
        const events = makeEvents(plan.stormEvents);
        const warm = events.slice(0, Math.max(1000, Math.floor(plan.stormEvents / 5)));
        await storm(pub, sub, ctx.prefix("stormwarm"), warm, viaEventBus, ctx.signal);
        await storm(pub, sub, ctx.prefix("stormwarm"), warm, rawNats, ctx.signal);
        const ours: StormResult[] = [];
        const raw: StormResult[] = [];
        for (let rep = 0; rep < plan.stormReps; rep++) {
          const a = () => storm(pub, sub, ctx.prefix(`storm${rep}`), events, viaEventBus, ctx.signal);
          const b = () => storm(pub, sub, ctx.prefix(`stormraw${rep}`), events, rawNats, ctx.signal);
          if (rep % 2 === 0) {
            ours.push(await a());
            raw.push(await b());
          } else {
            raw.push(await b());
            ours.push(await a());
          }
          ctx.progress.advance((rep + 1) / plan.stormReps);
        }
        const rate = median(ours.map((r) => r.eventsPerSec));
        const rawRate = median(raw.map((r) => r.eventsPerSec));
        const received = min(ours.map((r) => r.received));
        const elapsed = median(ours.map((r) => r.elapsedMs)) / 1000;
        return {
          method:
            `${fmt(plan.stormEvents, 0)} domain events through NatsEventBus.publish (one connection) to a subscriber on <prefix>.events.> (a second connection, JSON.parse of each), ` +
            `against nats.js by hand doing the same (JSON.stringify + publish); median of ${plan.stormReps} alternating repetitions after warm-ups.`,
          figures: [
            fig("storm.events_s", "event storm throughput", rate, "events/s", "higher", { reference: REF.stormPerS, headline: true, samples: ours.map((r) => r.eventsPerSec) }),
            fig("storm.elapsed_s", `${fmt(plan.stormEvents, 0)} events, first publish to last delivery`, elapsed, "s", "lower", { reference: REF.stormS }),
            fig("storm.received", "events received (worst repetition)", received, "", "higher"),
            fig("storm.delivered_pct", "delivered (worst repetition)", (received / plan.stormEvents) * 100, "%", "higher"),
            fig("storm.raw_events_s", "raw nats.js pub->sub, same run", rawRate, "events/s", "none", { samples: raw.map((r) => r.eventsPerSec) }),
            fig("storm.vs_raw_x", "event bus / raw nats.js", rate / rawRate, "x", "higher"),
          ],
          notes: ["The reference app's storm was in process (no network, no encoding)."],
          summary: `${fmt(rate, 0)} events/s (${fmt(rate / rawRate, 2)}x raw nats.js), ${received} of ${plan.stormEvents} received`,
        };
      } finally {
        await pub.close();
        await sub.close();
      }
    },
  };

  const dbStress: StepDef = {
    id: "db_stress",
    title: `database stress (${fmt(plan.dbStressOps, 0)} mixed operations)`,
    async run(ctx) {
      const dir = await ctx.dir("dbstress");
      const sync = ctx.config.database.synchronous;
      const db = await openDatabase({ file: join(dir, "stress.db"), synchronous: sync });
      try {
        const work = new MixedWorkload(slowed(new VideoStore(db), ctx.inject.dbDelayMs));
        const t0 = now();
        for (let i = 0; i < plan.dbStressOps; i++) {
          const p = work.step();
          if (p) await p;
          if (i % 500 === 499) {
            await turn();
            throwIfAborted(ctx.signal);
            ctx.progress.advance(i / plan.dbStressOps);
          }
        }
        const totalS = (now() - t0) / 1000;
        const c = work.counts;
        return {
          method:
            `${fmt(plan.dbStressOps, 0)} operations through VideoStore on a fresh scratch SQLite file with the production pragmas (WAL, synchronous=${sync}), each write its own transaction: ` +
            `40% enqueue, 30% read by id, 20% state changes (start attempt, complete step, change priority), 10% list 50.`,
          figures: [
            fig("db_stress.ops_s", "DB stress, operations per second", plan.dbStressOps / totalS, "ops/s", "higher", { reference: REF.stressOpsS, headline: true }),
            fig("db_stress.total_s", `${fmt(plan.dbStressOps, 0)} operations`, totalS, "s", "lower", { reference: REF.stressS }),
            fig("db_stress.ms_per_op", "time per operation", (totalS * 1000) / plan.dbStressOps, "ms", "lower", { reference: REF.stressMsPerOp }),
            fig("db_stress.ops", "operations", plan.dbStressOps, "", "none"),
          ],
          notes: [
            `Mix: ${c.enqueue} enqueues, ${c.get} reads, ${c.start} attempt starts, ${c.complete} step completions, ${c.priority} priority changes, ${c.list} lists.`,
            ...(ctx.inject.dbDelayMs ? [`INJECTED: every data-layer call was delayed by ${ctx.inject.dbDelayMs} ms (test of the report's verdicts).`] : []),
          ],
          summary: `${fmt(plan.dbStressOps / totalS, 0)} ops/s (${fmt((totalS * 1000) / plan.dbStressOps, 3)} ms/op)`,
        };
      } finally {
        await db.close();
      }
    },
  };

  const queueStress: StepDef = {
    id: "queue_stress",
    title: `queue stress (${fmt(plan.queueStressJobs, 0)} jobs; ${fmt(plan.durableJobs, 0)} durable jobs)`,
    async run(ctx) {
      const n = plan.queueStressJobs;
      const workers = ctx.config.workers.count;
      // 1. The JetStream queue alone: publish everything, then `workers` loops take and ack.
      const nc = await ctx.nats.connect(`vqd-profiler-qstress:${process.pid}`);
      let puller: PriorityPuller | undefined;
      let addS: number;
      let processS: number;
      try {
        const q = new JetStreamJobQueue(nc, jobQueueOptions(ctx.config, { subjects: makeSubjects(ctx.prefix("qstress")), stream: ctx.stream("qstress") }));
        await q.ensure();
        const jobs: JobToPublish[] = Array.from({ length: n }, (_, i) => ({ msgId: `stress-${i}.1`, job: { videoId: `stress-${i}`, dispatch: 1, lane: laneOf(i) } }));
        let t0 = now();
        for (let i = 0; i < n; i += 1000) {
          const outcomes = await q.publish(jobs.slice(i, i + 1000));
          const bad = outcomes.find((o) => !o.ok);
          if (bad && !bad.ok) throw new Error(`publish failed: ${bad.error.message}`);
          throwIfAborted(ctx.signal);
        }
        addS = (now() - t0) / 1000;
        ctx.progress.advance(0.2, "processing on the JetStream queue");
        puller = new PriorityPuller(q, pullerOptions(ctx.config, LANES));
        puller.start();
        let taken = 0;
        t0 = now();
        const p = puller;
        await within(
          Promise.all(
            Array.from({ length: workers }, async () => {
              while (taken < n) {
                const job = await p.take();
                if (!job) return;
                job.ack();
                // The last one: release the loops still waiting for a job that will never come.
                if (++taken === n) void p.stop();
              }
            }),
          ),
          { signal: ctx.signal, timeoutMs: 120_000, what: `${n} jobs to be processed (${taken} so far)` },
        );
        await nc.flush();
        processS = (now() - t0) / 1000;
        if (taken !== n) throw new Error(`${taken} of ${n} jobs processed`);
      } finally {
        await puller?.stop();
        await nc.close();
        await ctx.deleteStreams("qstress").catch(() => undefined);
      }
      throwIfAborted(ctx.signal);

      // 2. Durable jobs end to end through a daemon: API -> SQLite -> outbox -> JetStream -> workers -> SQLite.
      ctx.progress.advance(0.5, "durable jobs through a daemon");
      const m = plan.durableJobs;
      const config = await ctx.scratchConfig("durable");
      const d = await InProcessDaemon.start(ctx, config);
      let durableS: number;
      let durableEnqueueS: number;
      try {
        const files = await d.placeholders(8);
        const batch = 500;
        const t0 = now();
        for (let i = 0, b = 0; i < m; i += batch, b++) {
          const size = Math.min(batch, m - i);
          await d.enqueue(Array.from({ length: size }, (_, k) => files[(i + k) % files.length] as string), { priority: laneOf(b), pipeline: "noop" });
          throwIfAborted(ctx.signal);
        }
        durableEnqueueS = (now() - t0) / 1000;
        await d.waitFinished(m, { signal: ctx.signal, timeoutMs: 60_000 + m * 20 });
        durableS = (Math.max(...[...d.finished().values()].map((f) => f.at)) - t0) / 1000;
        await d.verifyCompleted(m);
      } finally {
        await d.stop();
        await ctx.deleteStreams("durable").catch(() => undefined);
      }
      return {
        method:
          `(1) JetStreamJobQueue alone: ${fmt(n, 0)} job messages (20/50/30% high/normal/low) published in pipelined batches of 1,000, then ${workers} loops take (PriorityPuller) and ack. ` +
          `(2) ${fmt(m, 0)} durable no-op jobs through an in-process daemon (${config.workers.count} workers): enqueued in API requests of 500 (mixed lanes), to the last VideoCompleted, then checked in the store.`,
        figures: [
          fig("queue_stress.add_s", `add ${fmt(n, 0)} jobs`, addS, "s", "lower", { reference: REF.queueAddS }),
          fig("queue_stress.process_s", `process ${fmt(n, 0)} jobs`, processS, "s", "lower", { reference: REF.queueProcessS }),
          fig("queue_stress.jobs_s", "jobs per second (JetStream queue)", n / processS, "jobs/s", "higher", { reference: REF.queueJobsS, headline: true }),
          fig("queue_stress.durable_s", `${fmt(m, 0)} durable jobs, first enqueue to last completed`, durableS, "s", "lower"),
          fig("queue_stress.durable_enqueue_s", "durable jobs, enqueue requests", durableEnqueueS, "s", "lower"),
          fig("queue_stress.durable_jobs_s", "durable no-op jobs per second, end to end", m / durableS, "jobs/s", "higher", { reference: REF.queueJobsS, headline: true }),
        ],
        notes: [
          "The reference app's 4,777 tasks/s were in memory (nothing survived a crash). DESIGN.md's goal for durable jobs (>= 1.5x BullMQ on a local Redis) is measured side by side by `npm run bench`.",
        ],
        summary: `JetStream ${fmt(n / processS, 0)} jobs/s (add ${fmt(addS, 3)} s, process ${fmt(processS, 3)} s); durable ${fmt(m / durableS, 0)} jobs/s`,
      };
    },
  };

  return [concurrent, leak, stormStep, dbStress, queueStress];
}
