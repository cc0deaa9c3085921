/**
 * queue group: durable no-op jobs per second, ours against BullMQ 5 on a local Redis, side by side.
 *
 * Ours: an in-process Daemon (SQLite file in a temp dir, WAL + synchronous=NORMAL, the production
 * pragmas) on the harness nats-server, 3 workers, pipeline `noop`. Jobs go in the way another
 * service would send them: `<prefix>.api.enqueue` requests of BATCH paths each, from a separate
 * NATS connection, one request after the other. The clock runs from the first request until the
 * last VideoCompleted arrives on `<prefix>.events.VideoCompleted` (published after its commit);
 * then the store is checked: every video completed, exactly one VideoCompleted event each.
 *
 * BullMQ: a redis-server of our own with appendonly yes + appendfsync everysec (the analogue of
 * WAL + NORMAL: a crash of the process loses nothing, power loss up to ~1 s), Queue.addBulk in
 * the same batches and lane order (priority 1 high, 2 normal, 3 low), a Worker with concurrency 3
 * and a no-op processor; the clock stops at the Worker's last `completed` event.
 *
 * Floor (informational, queue-floor.ts): the same durable work per job in raw better-sqlite3 and
 * nats.js without vqd's code, one rep after each BullMQ rep: what the design can do on one thread
 * here, so that ours / floor (our overhead) and floor / BullMQ (the design's ceiling) read apart.
 */
import { equal } from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Queue, Worker } from "bullmq";
import { ApiClient, type EnqueueResultJson } from "../../src/api/index.js";
import { subjects as makeSubjects } from "../../src/bus/index.js";
import { Daemon } from "../../src/daemon/index.js";
import type { Lane } from "../../src/domain/index.js";
import { silentLogger } from "../../src/shared/logger.js";
import { startNatsServer } from "../support/nats-server.js";
import { makeVqdEnv } from "../support/vqd-env.js";
import { alternate, jobCpuMeter, median, seededRandom, shuffled, watchCompletions, within } from "./measure.js";
import { floorOnce } from "./queue-floor.js";
import { startRedis, type BenchRedis } from "./redis-server.js";
import type { BenchContext, BenchGroup, BenchResult, Figure } from "./types.js";

/** The reference app's queue stress figure (in memory, no persistence). */
const REFERENCE_JOBS_S = 4_777;
const GOAL = { kind: "ratio-min", value: 1.5 } as const;

export interface Plan {
  readonly jobs: number;
  readonly batch: number;
  readonly reps: number;
  /** Untimed jobs run once on each side first (JIT, connections, file creation). */
  readonly warmup: number;
  readonly timeoutMs: number;
}

export const FULL: Plan = { jobs: 10_000, batch: 500, reps: 2, warmup: 1_000, timeoutMs: 120_000 };
const QUICK: Plan = { jobs: 2_000, batch: 500, reps: 1, warmup: 500, timeoutMs: 60_000 };

/** 20% high, 50% normal, 30% low, by batch, in a fixed shuffled order. */
const MIX: readonly [Lane, number][] = [
  ["high", 0.2],
  ["normal", 0.5],
  ["low", 0.3],
];
const BULL_PRIORITY: Record<Lane, number> = { high: 1, normal: 2, low: 3 };
const FILES = 8;

export interface Batch {
  readonly lane: Lane;
  readonly size: number;
}

export function batches(jobs: number, size: number, seed = 0xb47c4): Batch[] {
  const n = Math.ceil(jobs / size);
  const lanes: Lane[] = [];
  for (const [lane, share] of MIX) for (let i = 0; i < Math.round(n * share); i++) lanes.push(lane);
  while (lanes.length < n) lanes.push("normal");
  lanes.length = n;
  const out = shuffled(lanes, seededRandom(seed)).map((lane, i) => ({ lane, size: Math.min(size, jobs - i * size) }));
  return out;
}

export interface RunResult {
  readonly jobsPerSec: number;
  /** Time until the last batch was accepted (enqueue overlaps processing). */
  readonly enqueueMs: number;
  readonly totalMs: number;
  /** CPU time per job during the timed window: this Node process (daemon + client), and the server process. */
  readonly nodeCpuUsPerJob: number;
  readonly serverCpuUsPerJob: number;
}

// ---------------------------------------------------------------- ours

let runCounter = 0;

/** Knobs for profiling and what-if runs (the group itself uses none). */
export interface OursOptions {
  /** More VQD_* variables, e.g. { VQD_WORKERS__PREFETCH: "64" }. */
  readonly extra?: Readonly<Record<string, string>>;
  /** Called once the daemon is ready, before the clock starts. */
  readonly afterStart?: (daemon: Daemon) => void | Promise<void>;
}

/** One run of ours (exported for profiling: `node --cpu-prof` on a script that calls it). */
export async function oursOnce(srv: { readonly url: string; readonly pid: number }, plan: Plan, jobs: number, options: OursOptions = {}): Promise<RunResult> {
  const env = await makeVqdEnv({
    natsUrl: srv.url,
    prefix: `vqbench${process.pid}q${++runCounter}`,
    extra: {
      VQD_WORKERS__COUNT: "3",
      VQD_DEFAULTPIPELINE: "noop",
      VQD_DATABASE__SYNCHRONOUS: "normal",
      VQD_TELEMETRY__ENABLED: "false",
      VQD_LOGGING__LEVEL: "silent",
      ...options.extra,
    },
  });
  let daemon: Daemon | undefined;
  let nc: NatsConnection | undefined;
  try {
    const files = await env.videos(FILES);
    const config = env.config();
    equal(config.workers.count, 3);
    daemon = await Daemon.start({ config, logger: silentLogger });
    await options.afterStart?.(daemon);
    const subj = makeSubjects(config.nats.subjectPrefix);
    nc = await connect({ servers: srv.url, name: "vqd-bench-client" });
    const api = new ApiClient(nc, subj, 60_000);

    const completed = await watchCompletions(nc, subj, jobs);

    const ids: string[] = [];
    const cpu = jobCpuMeter(srv.pid);
    const start = performance.now();
    let k = 0;
    for (const b of batches(jobs, plan.batch)) {
      const paths = Array.from({ length: b.size }, () => files[k++ % files.length] as string);
      const results = await api.call<"enqueue", EnqueueResultJson[]>("enqueue", { paths, priority: b.lane, pipeline: "noop" });
      for (const r of results) {
        if (!("id" in r)) throw new Error(`enqueue refused: ${r.error}`);
        ids.push(r.id);
      }
    }
    const enqueueMs = performance.now() - start;
    await within(completed.done, plan.timeoutMs, async () => {
      const c = await daemon?.store.counts();
      return `completed ${c?.byState.completed} of ${jobs} in the store, ${completed.ids.size} VideoCompleted events received`;
    });
    const totalMs = completed.lastAt() - start;
    const used = cpu(jobs);

    // The record, not the feed, decides: all completed, exactly one VideoCompleted each.
    const counts = await daemon.store.counts();
    equal(counts.total, jobs, "videos in the store");
    equal(counts.byState.completed, jobs, "completed videos in the store");
    const row = daemon.store.database.raw
      .prepare("SELECT count(*) AS n, count(DISTINCT stream_id) AS d FROM events WHERE type = 'VideoCompleted'")
      .get() as { n: number; d: number };
    equal(row.n, jobs, "VideoCompleted events in the store");
    equal(row.d, jobs, "videos with a VideoCompleted event");
    equal(completed.events(), jobs, "VideoCompleted events published");
    equal(new Set(ids).size, jobs, "distinct ids returned by enqueue");
    return { jobsPerSec: jobs / (totalMs / 1000), enqueueMs, totalMs, nodeCpuUsPerJob: used.node, serverCpuUsPerJob: used.server };
  } finally {
    await daemon?.stop();
    await nc?.close();
    await env.cleanup();
  }
}

// ---------------------------------------------------------------- BullMQ

async function bullOnce(redis: BenchRedis, plan: Plan, jobs: number, paths: readonly string[]): Promise<RunResult> {
  const connection = { host: redis.host, port: redis.port };
  const name = `vqbench-${process.pid}-${++runCounter}`;
  const queue = new Queue(name, { connection });
  let finished = 0;
  let lastAt = 0;
  let failed = 0;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => (resolveDone = r));
  const worker = new Worker(name, async () => ({}), { connection, concurrency: 3 });
  worker.on("completed", () => {
    if (++finished === jobs) {
      lastAt = performance.now();
      resolveDone();
    }
  });
  worker.on("failed", () => {
    failed++;
  });
  try {
    await queue.waitUntilReady();
    await worker.waitUntilReady();
    const cpu = jobCpuMeter(redis.pid);
    const start = performance.now();
    let k = 0;
    for (const b of batches(jobs, plan.batch)) {
      const priority = BULL_PRIORITY[b.lane];
      await queue.addBulk(
        Array.from({ length: b.size }, () => ({ name: "noop", data: { path: paths[k++ % paths.length] as string, pipeline: "noop" }, opts: { priority } })),
      );
    }
    const enqueueMs = performance.now() - start;
    await within(done, plan.timeoutMs, () => `completed ${finished} of ${jobs}, failed ${failed}`);
    const totalMs = lastAt - start;
    const used = cpu(jobs);
    const counts = await queue.getJobCounts("completed", "failed", "waiting", "prioritized", "active");
    equal(counts.completed, jobs, "BullMQ completed jobs");
    equal(failed, 0, "BullMQ failed jobs");
    return { jobsPerSec: jobs / (totalMs / 1000), enqueueMs, totalMs, nodeCpuUsPerJob: used.node, serverCpuUsPerJob: used.server };
  } finally {
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

// ---------------------------------------------------------------- the group

async function run(ctx: BenchContext): Promise<BenchResult> {
  const plan = ctx.quick ? QUICK : FULL;
  const srv = await startNatsServer();
  let redis: BenchRedis | undefined;
  try {
    redis = await startRedis();
    const r = redis;
    const bullPaths = Array.from({ length: FILES }, (_, i) => `/srv/videos/incoming/clip-${String(i + 1).padStart(5, "0")}.mp4`);
    ctx.log(`queue: warm-up, ${plan.warmup} jobs each side and the floor`);
    await oursOnce(srv, plan, plan.warmup);
    await bullOnce(r, plan, plan.warmup, bullPaths);
    await floorOnce(srv, batches(plan.warmup, plan.batch), plan.timeoutMs);
    const samples = { a: [] as RunResult[], b: [] as RunResult[], floor: [] as RunResult[] };
    const line = (x: RunResult): string =>
      `${Math.round(x.jobsPerSec)} jobs/s (enqueue done at ${x.enqueueMs.toFixed(0)} ms, last completed at ${x.totalMs.toFixed(0)} ms; CPU/job: node ${x.nodeCpuUsPerJob.toFixed(0)} us, server ${x.serverCpuUsPerJob.toFixed(0)} us)`;
    await alternate(
      plan.reps,
      async (rep) => {
        const x = await oursOnce(srv, plan, plan.jobs);
        ctx.log(`queue: ours   rep ${rep + 1}: ${line(x)}`);
        samples.a.push(x);
        return x.jobsPerSec;
      },
      async (rep) => {
        const x = await bullOnce(r, plan, plan.jobs, bullPaths);
        ctx.log(`queue: bullmq rep ${rep + 1}: ${line(x)}`);
        samples.b.push(x);
        // The floor is informational: one rep next to each BullMQ rep, on the same machine state.
        const f = await floorOnce(srv, batches(plan.jobs, plan.batch), plan.timeoutMs);
        ctx.log(`queue: floor  rep ${rep + 1}: ${line(f)}`);
        samples.floor.push(f);
        return x.jobsPerSec;
      },
    );
    const ours = median(samples.a.map((s) => s.jobsPerSec));
    const bull = median(samples.b.map((s) => s.jobsPerSec));
    const floor = median(samples.floor.map((s) => s.jobsPerSec));
    const oursEnq = median(samples.a.map((s) => plan.jobs / (s.enqueueMs / 1000)));
    const bullEnq = median(samples.b.map((s) => plan.jobs / (s.enqueueMs / 1000)));
    const figures: Figure[] = [
      {
        key: "queue.jobs_s",
        label: `durable no-op jobs, ${plan.jobs.toLocaleString("en-US")}, 3 workers, mixed lanes`,
        value: ours,
        unit: "jobs/s",
        baselineKey: "queue.bullmq_jobs_s",
        goal: GOAL,
        reference: REFERENCE_JOBS_S,
      },
      { key: "queue.bullmq_jobs_s", value: bull, unit: "jobs/s" },
      {
        key: "queue.floor_jobs_s",
        label: "floor: the same durable work, raw better-sqlite3 + nats.js, none of vqd's job path",
        value: floor,
        unit: "jobs/s",
        baselineKey: "queue.bullmq_jobs_s",
      },
      {
        key: "queue.enqueue_jobs_s",
        label: `enqueue accepted (batches of ${plan.batch}, overlaps processing)`,
        value: oursEnq,
        unit: "jobs/s",
        baselineKey: "queue.bullmq_enqueue_jobs_s",
      },
      { key: "queue.bullmq_enqueue_jobs_s", value: bullEnq, unit: "jobs/s" },
      {
        key: "queue.cpu_us_per_job",
        label: "CPU per job, this process + server (nats-server / redis-server)",
        value: median(samples.a.map((s) => s.nodeCpuUsPerJob + s.serverCpuUsPerJob)),
        unit: "us",
        baselineKey: "queue.bullmq_cpu_us_per_job",
      },
      { key: "queue.bullmq_cpu_us_per_job", value: median(samples.b.map((s) => s.nodeCpuUsPerJob + s.serverCpuUsPerJob)), unit: "us" },
    ];
    const cpuSplit = (xs: readonly RunResult[]): string =>
      `${median(xs.map((s) => s.nodeCpuUsPerJob)).toFixed(0)} us node + ${median(xs.map((s) => s.serverCpuUsPerJob)).toFixed(0)} us server`;
    const fmt = (xs: readonly RunResult[]): string => xs.map((s) => Math.round(s.jobsPerSec).toLocaleString("en-US")).join(", ");
    return {
      figures,
      notes: [
        `ours: in-process Daemon, SQLite file (WAL, synchronous=NORMAL), harness nats-server (JetStream file store), pipeline noop, workers.count=3; ` +
          `enqueue = ${plan.batch}-path requests on <prefix>.api.enqueue from a separate NATS connection, one after the other; ` +
          `lanes by batch 20% high / 50% normal / 30% low; clock stops at the last VideoCompleted on <prefix>.events.VideoCompleted; ` +
          `checked after each run: all completed in the store, exactly one VideoCompleted event per video`,
        `BullMQ: own redis-server (${redis.persistence}), Queue.addBulk in the same batches and order (priority 1/2/3), Worker concurrency 3, no-op processor, completed jobs kept; clock stops at the last 'completed' event`,
        `floor (test/bench/queue-floor.ts): per job the same SQL writes (events, video row, outbox), JetStream publish + pull + ack and 4 published events as ours, ` +
          `without path checks, domain logic, strict lane priority or bookkeeping: an upper bound for a one-thread implementation of the design here; ours is ${(ours / floor).toFixed(2)}x the floor; floor ${fmt(samples.floor)} jobs/s, ` +
          `CPU per job ${cpuSplit(samples.floor)}`,
        `median of ${plan.reps} alternating reps each after ${plan.warmup.toLocaleString("en-US")}-job warm-ups; ours ${fmt(samples.a)}; BullMQ ${fmt(samples.b)} jobs/s`,
        `reference app: ${REFERENCE_JOBS_S.toLocaleString("en-US")} tasks/s, in memory (no persistence)`,
        `CPU per job (medians, from process.cpuUsage and /proc/<pid>/stat; less sensitive to other load on the machine than jobs/s): ` +
          `ours ${cpuSplit(samples.a)} (nats-server); BullMQ ${cpuSplit(samples.b)} (redis-server)`,
      ],
    };
  } finally {
    await redis?.stop();
    await srv.stop();
  }
}

export const queueGroup: BenchGroup = {
  name: "queue",
  description: "durable no-op jobs/s: vqd (SQLite + JetStream) vs BullMQ on Redis, same run",
  run,
};
