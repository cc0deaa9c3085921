/**
 * telemetry group: durable no-op jobs per second with telemetry on (traces and metrics exported
 * over OTLP/HTTP to a receiver in another process) and off (telemetry.enabled: false), side by
 * side in one run. Goal: on >= 0.9x off.
 *
 * Each run: an in-process Daemon (SQLite file in a temp dir, production pragmas) on the harness
 * nats-server, 3 workers, pipeline `noop`; jobs go in as `<prefix>.api.enqueue` requests of BATCH
 * paths from a separate NATS connection; the clock stops at the last VideoCompleted event.
 * "On" uses the defaults an operator gets by setting OTEL_EXPORTER_OTLP_ENDPOINT alone
 * (http/protobuf, parentbased_always_on sampler, batch span processor defaults), with metrics
 * exported every second instead of every minute so that metric export happens during the run.
 */
import { fork, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ApiClient, type EnqueueResultJson } from "../../src/api/index.js";
import { subjects as makeSubjects } from "../../src/bus/index.js";
import { Daemon } from "../../src/daemon/index.js";
import { silentLogger } from "../../src/shared/logger.js";
import { noopTelemetry, setupTelemetry } from "../../src/telemetry/index.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { makeVqdEnv } from "../support/vqd-env.js";
import { alternate, median, tempDir, watchCompletions, within } from "./measure.js";
import { batches } from "./queue.bench.js";
import type { BenchContext, BenchGroup, BenchResult } from "./types.js";

interface Plan {
  readonly jobs: number;
  readonly batch: number;
  readonly reps: number;
  readonly warmup: number;
  readonly timeoutMs: number;
}

const FULL: Plan = { jobs: 5_000, batch: 500, reps: 5, warmup: 1_000, timeoutMs: 120_000 };
const QUICK: Plan = { jobs: 1_000, batch: 500, reps: 1, warmup: 300, timeoutMs: 60_000 };
const FILES = 8;

interface Sample {
  readonly jobsPerSec: number;
  readonly cpuUsPerJob: number;
}

/** The OTLP receiver in a child process, so that receiving costs the measured process nothing. */
interface Collector {
  readonly url: string;
  stats(): Promise<{ requests: Record<string, number>; bytes: number }>;
  close(): Promise<void>;
}

export async function startCollector(): Promise<Collector> {
  const dir = tempDir("vqd-bench-otlp-");
  const receiver = new URL("../support/otlp-receiver.js", import.meta.url).href;
  const script = join(dir.path, "collector.mjs");
  writeFileSync(
    script,
    `import { startOtlpReceiver } from ${JSON.stringify(receiver)};
const r = await startOtlpReceiver({ decode: false });
process.on("message", (m) => { if (m === "stats") process.send({ requests: r.requests, bytes: r.bytes }); });
process.send({ url: r.url });
`,
  );
  const child: ChildProcess = fork(script, [], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  const url = await new Promise<string>((resolve, reject) => {
    child.once("message", (m) => resolve((m as { url: string }).url));
    child.once("exit", (code) => reject(new Error(`the OTLP receiver exited (${code})`)));
  });
  return {
    url,
    stats: () =>
      new Promise((resolve) => {
        child.once("message", (m) => resolve(m as { requests: Record<string, number>; bytes: number }));
        child.send("stats");
      }),
    async close() {
      child.kill("SIGTERM");
      dir.remove();
    },
  };
}

let runCounter = 0;

export async function telemetryOnce(srv: TestNatsServer, plan: Plan, jobs: number, collector: Collector | null, extra: Readonly<Record<string, string>> = {}): Promise<Sample> {
  const env = await makeVqdEnv({
    natsUrl: srv.url,
    prefix: `vqbench${process.pid}t${++runCounter}`,
    extra: {
      VQD_WORKERS__COUNT: "3",
      VQD_DEFAULTPIPELINE: "noop",
      VQD_DATABASE__SYNCHRONOUS: "normal",
      VQD_TELEMETRY__ENABLED: collector ? "true" : "false",
      VQD_LOGGING__LEVEL: "silent",
      ...extra,
    },
  });
  let daemon: Daemon | undefined;
  let nc: NatsConnection | undefined;
  try {
    const files = await env.videos(FILES);
    const config = env.config();
    const telemetry = collector
      ? await setupTelemetry(config, { role: "daemon", logger: silentLogger, env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_METRIC_EXPORT_INTERVAL: "1000" } })
      : noopTelemetry;
    if (collector && telemetry.mode !== "export") throw new Error("telemetry is not exporting");
    daemon = await Daemon.start({ config, logger: silentLogger, telemetry });
    const subj = makeSubjects(config.nats.subjectPrefix);
    nc = await connect({ servers: srv.url, name: "vqd-bench-client" });
    const api = new ApiClient(nc, subj, 60_000);
    const completed = await watchCompletions(nc, subj, jobs);
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    let k = 0;
    for (const b of batches(jobs, plan.batch)) {
      const paths = Array.from({ length: b.size }, () => files[k++ % files.length] as string);
      const results = await api.call<"enqueue", EnqueueResultJson[]>("enqueue", { paths, priority: b.lane, pipeline: "noop" });
      if (results.some((r) => !("id" in r))) throw new Error("enqueue refused");
    }
    await within(completed.done, plan.timeoutMs, () => `${completed.ids.size} of ${jobs} completed`);
    const used = process.cpuUsage(cpu0);
    return { jobsPerSec: jobs / ((completed.lastAt() - start) / 1000), cpuUsPerJob: (used.user + used.system) / jobs };
  } finally {
    await daemon?.stop();
    await nc?.close();
    await env.cleanup();
  }
}

async function run(ctx: BenchContext): Promise<BenchResult> {
  const plan = ctx.quick ? QUICK : FULL;
  const srv = await startNatsServer();
  const collector = await startCollector();
  try {
    ctx.log(`telemetry: warm-up, ${plan.warmup} jobs each side`);
    await telemetryOnce(srv, plan, plan.warmup, collector);
    await telemetryOnce(srv, plan, plan.warmup, null);
    const before = await collector.stats();
    const on: Sample[] = [];
    const off: Sample[] = [];
    const show = (s: Sample) => `${Math.round(s.jobsPerSec)} jobs/s, CPU ${s.cpuUsPerJob.toFixed(0)} us/job`;
    await alternate(
      plan.reps,
      async (rep) => {
        const s = await telemetryOnce(srv, plan, plan.jobs, collector);
        ctx.log(`telemetry: on  rep ${rep + 1}: ${show(s)}`);
        on.push(s);
        return s.jobsPerSec;
      },
      async (rep) => {
        const s = await telemetryOnce(srv, plan, plan.jobs, null);
        ctx.log(`telemetry: off rep ${rep + 1}: ${show(s)}`);
        off.push(s);
        return s.jobsPerSec;
      },
    );
    const after = await collector.stats();
    // Every job traced (telemetry.tracedJobsPerSecond: 0): what tracing each no-op job costs.
    const unlimited: Sample[] = [];
    for (let rep = 0; rep < Math.ceil(plan.reps / 2); rep++) {
      const s = await telemetryOnce(srv, plan, plan.jobs, collector, { VQD_TELEMETRY__TRACEDJOBSPERSECOND: "0" });
      ctx.log(`telemetry: on, every job traced, rep ${rep + 1}: ${show(s)}`);
      unlimited.push(s);
    }
    const delta = (path: string) => (after.requests[path] ?? 0) - (before.requests[path] ?? 0);
    const fmt = (xs: readonly Sample[]) => xs.map((s) => Math.round(s.jobsPerSec).toLocaleString("en-US")).join(", ");
    return {
      figures: [
        {
          key: "telemetry.jobs_s_on",
          label: `no-op jobs, ${plan.jobs.toLocaleString("en-US")}, telemetry exporting (OTLP http/protobuf)`,
          value: median(on.map((s) => s.jobsPerSec)),
          unit: "jobs/s",
          baselineKey: "telemetry.jobs_s_off",
          goal: { kind: "ratio-min", value: 0.9 },
        },
        { key: "telemetry.jobs_s_off", label: "the same, telemetry.enabled: false", value: median(off.map((s) => s.jobsPerSec)), unit: "jobs/s" },
        {
          key: "telemetry.cpu_us_per_job_on",
          label: "CPU per job in the daemon's process, telemetry on",
          value: median(on.map((s) => s.cpuUsPerJob)),
          unit: "us",
          baselineKey: "telemetry.cpu_us_per_job_off",
        },
        { key: "telemetry.cpu_us_per_job_off", value: median(off.map((s) => s.cpuUsPerJob)), unit: "us" },
        {
          key: "telemetry.jobs_s_on_all_traced",
          label: "the same, every job traced (tracedJobsPerSecond: 0)",
          value: median(unlimited.map((s) => s.jobsPerSec)),
          unit: "jobs/s",
          baselineKey: "telemetry.jobs_s_off",
        },
        {
          key: "telemetry.cpu_us_per_job_on_all_traced",
          label: "CPU per job, every job traced",
          value: median(unlimited.map((s) => s.cpuUsPerJob)),
          unit: "us",
          baselineKey: "telemetry.cpu_us_per_job_off",
        },
      ],
      notes: [
        `in-process Daemon per run (3 workers, pipeline noop, SQLite WAL + synchronous=NORMAL) on the harness nats-server; ${plan.batch}-path enqueue requests; clock stops at the last VideoCompleted`,
        `on: OTEL_EXPORTER_OTLP_ENDPOINT to an OTLP/HTTP receiver in a child process (http/protobuf, parentbased_always_on, batch span processor defaults), metrics every 1 s, ` +
          `the default telemetry.tracedJobsPerSecond (100: past that rate a job's spans are not recorded; every job is still counted in the metrics); off: telemetry.enabled false`,
        `per traced job: spans send (producer), process (consumer), one per step, plus one vq.store.append per commit and one vq.outbox.publish per relay batch; every job: in-flight, completed, job and step duration metrics`,
        `receiver got ${delta("/v1/traces")} trace and ${delta("/v1/metrics")} metric requests (${((after.bytes - before.bytes) / 1048576).toFixed(1)} MB) during the alternating reps`,
        `median of ${plan.reps} alternating reps each after warm-ups; on ${fmt(on)}; off ${fmt(off)}; every job traced ${fmt(unlimited)} jobs/s`,
      ],
    };
  } finally {
    await collector.close();
    await srv.stop();
  }
}

export const telemetryGroup: BenchGroup = {
  name: "telemetry",
  description: "durable no-op jobs/s with telemetry exporting over OTLP vs telemetry off, same run",
  run,
};
