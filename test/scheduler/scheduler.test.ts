/**
 * The scheduler on node-cron with seconds-level cron expressions: it fires, never overlaps (a
 * firing while the previous run goes on is skipped and logged), stops at shutdown (the run in
 * progress is aborted and waited for), runs the real profiling suites, and honours enabled flags
 * and the time zone.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { loadConfig, type Config } from "../../src/config/index.js";
import { profileCompletedPayload, Scheduler, type ScheduledRun } from "../../src/scheduler/index.js";
import { createLogger, type Logger } from "../../src/shared/logger.js";
import { assertReportFiles, streamNames } from "../profiler/helpers.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";

let srv: TestNatsServer;
let root: string;
let homes = 0;

before(async () => {
  srv = await startNatsServer();
  root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "vqd-scheduler-")));
});

after(async () => {
  await srv.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

interface Captured {
  readonly logger: Logger;
  lines(): { msg: string; job?: string; [k: string]: unknown }[];
}

function captureLogger(): Captured {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      cb();
    },
  });
  return { logger: createLogger({ level: "debug", format: "json", destination }), lines: () => lines.map((l) => JSON.parse(l) as { msg: string }) };
}

/** A config whose schedules are given as VQD_SCHEDULES__* values (everything else default). */
function configWith(schedules: Record<string, string>): Config {
  const env: Record<string, string> = { VQD_DATADIR: path.join(root, `home${++homes}`), VQD_NATS__SERVERS: srv.url };
  for (const [k, v] of Object.entries(schedules)) env[`VQD_SCHEDULES__${k.toUpperCase()}`] = v;
  return loadConfig({ env, cwd: root });
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason as Error);
    });
  });

const onlyBasic = { BASICPROFILE__CRON: "* * * * * *", ADVANCEDPROFILE__ENABLED: "false", MEMORYSNAPSHOT__ENABLED: "false" };

describe("Scheduler", () => {
  test("fires every second, never overlaps a run still going (skipping and logging), and stops firing after stop()", async () => {
    const log = captureLogger();
    const starts: number[] = [];
    let active = 0;
    let maxActive = 0;
    const results: ScheduledRun[] = [];
    const scheduler = new Scheduler({
      config: configWith(onlyBasic),
      logger: log.logger,
      onResult: (r) => {
        results.push(r);
      },
      tasks: {
        basicProfile: async ({ signal }) => {
          starts.push(Date.now());
          maxActive = Math.max(maxActive, ++active);
          try {
            await sleep(2300, signal);
            return "slow run done";
          } finally {
            active--;
          }
        },
      },
    });
    scheduler.start();
    assert.deepEqual(Object.keys(scheduler.nextRuns()), ["basicProfile"]);
    await sleep(5600);
    await scheduler.stop();
    const count = starts.length;
    assert.ok(count >= 2 && count <= 3, `${count} runs in 5.6 s of a 2.3 s task fired every second`);
    assert.equal(maxActive, 1, "never two at once");
    for (let i = 1; i < count; i++) assert.ok((starts[i] as number) - (starts[i - 1] as number) >= 2200, "each run starts after the previous one ended");
    const skips = log.lines().filter((l) => l.msg === "scheduled run skipped: the previous run of this job is still going");
    assert.ok(skips.length >= 2, `${skips.length} skips logged`);
    assert.ok(skips.every((s) => s.job === "basicProfile" && typeof s.scheduledFor === "string"));
    assert.equal(results.length, count, "every run reported, the last one stopped or finished");
    assert.ok(results.slice(0, -1).every((r) => r.ok && r.value === "slow run done" && !r.aborted));
    assert.equal(active, 0);
    await sleep(1500);
    assert.equal(starts.length, count, "nothing fires after stop()");
  });

  test("stop() aborts the run in progress and resolves only once it has cleaned up", async () => {
    let cleaned = false;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const results: ScheduledRun[] = [];
    const scheduler = new Scheduler({
      config: configWith(onlyBasic),
      logger: captureLogger().logger,
      onResult: (r) => {
        results.push(r);
      },
      tasks: {
        basicProfile: async ({ signal }) => {
          started();
          try {
            await sleep(60_000, signal);
          } finally {
            await sleep(300);
            cleaned = true;
          }
        },
      },
    });
    scheduler.start();
    await running;
    assert.deepEqual(scheduler.running(), ["basicProfile"]);
    const t0 = Date.now();
    await scheduler.stop();
    assert.ok(cleaned, "stop() waited for the run's cleanup");
    assert.ok(Date.now() - t0 < 5000);
    assert.deepEqual(scheduler.running(), []);
    assert.equal(results.length, 1);
    assert.equal(results[0]?.ok, false);
    assert.equal(results[0]?.aborted, true);
    assert.match(results[0]?.error?.message ?? "", /scheduler is stopping/);
    assert.equal(await scheduler.stop(), undefined, "stop() again is a no-op");
  });

  test("runs the real basic profile on schedule: report files, onResult, and a ProfileCompleted payload", async () => {
    const log = captureLogger();
    const config = configWith(onlyBasic);
    let resolve!: (r: ScheduledRun) => void;
    const first = new Promise<ScheduledRun>((r) => (resolve = r));
    const scheduler = new Scheduler({
      config,
      logger: log.logger,
      onResult: resolve,
      profile: { quick: true, plan: { startupRuns: 1, settleMs: 100, idleWindowMs: 1000, dbReps: 1, busEvents: 1000, queueJobs: 50 } },
    });
    scheduler.start();
    const run = await first;
    await scheduler.stop();
    assert.equal(run.ok, true, run.error?.message);
    assert.equal(run.job, "basicProfile");
    const report = assertReportFiles(run.profile?.files, "basic");
    assert.equal(report.trigger, "schedule");
    assert.equal(report.kind, "basic");
    assert.equal(path.dirname(run.profile?.files?.json as string), config.reportsDir);
    assert.equal(report.sections.filter((s) => s.error).length, 0);
    const payload = profileCompletedPayload(run);
    assert.equal(payload?.kind, "basic");
    assert.equal(payload?.pass, report.verdict.pass);
    assert.equal(payload?.report, run.profile?.files?.json);
    assert.ok(Array.isArray(payload?.headline) && (payload.headline as unknown[]).length >= 4);
    const lines = log.lines();
    assert.ok(lines.some((l) => l.msg === "scheduled run skipped: the previous run of this job is still going"), "firings during the run were skipped");
    assert.ok(lines.some((l) => /^profile basic \[1\/5\] startup/.test(l.msg)), "progress goes to the log, a line per step");
  });

  test("stopping during a real advanced profile run cleans up: no report, no scratch directory, no streams left", async () => {
    const log = captureLogger();
    const config = configWith({ BASICPROFILE__ENABLED: "false", ADVANCEDPROFILE__CRON: "* * * * * *", MEMORYSNAPSHOT__ENABLED: "false" });
    const results: ScheduledRun[] = [];
    const scheduler = new Scheduler({ config, logger: log.logger, onResult: (r) => void results.push(r), profile: { quick: true } });
    scheduler.start();
    const deadline = Date.now() + 15_000;
    let starting: Record<string, unknown> | undefined;
    while (!(starting = log.lines().find((l) => l.msg === "profiling run starting"))) {
      assert.ok(Date.now() < deadline, "the advanced run started");
      await sleep(50);
    }
    await sleep(800);
    assert.deepEqual(scheduler.running(), ["advancedProfile"]);
    const t0 = Date.now();
    await scheduler.stop();
    assert.ok(Date.now() - t0 < 20_000, `stopped in ${Date.now() - t0} ms`);
    assert.equal(results.length, 1);
    assert.equal(results[0]?.aborted, true);
    assert.equal(results[0]?.profile, undefined);
    assert.ok(typeof starting.scratchDir === "string" && !fs.existsSync(starting.scratchDir), "scratch directory removed");
    assert.ok(!fs.existsSync(config.reportsDir) || fs.readdirSync(config.reportsDir).length === 0, "no report written");
    assert.deepEqual((await streamNames(srv.url)).filter((n) => n.startsWith("VQP_")), []);
    assert.ok(log.lines().some((l) => l.msg === "scheduled run stopped"));
  });

  test("disabled jobs are not armed, the memory snapshot runs the given task, cron times follow the time zone", async () => {
    const log = captureLogger();
    const config = configWith({ TIMEZONE: "Asia/Tokyo", BASICPROFILE__CRON: "0 3 * * *", ADVANCEDPROFILE__ENABLED: "false", MEMORYSNAPSHOT__CRON: "* * * * * *" });
    let snapshots = 0;
    let resolve!: (r: ScheduledRun) => void;
    const snapped = new Promise<ScheduledRun>((r) => (resolve = r));
    const scheduler = new Scheduler({
      config,
      logger: log.logger,
      memorySnapshot: async () => ({ file: `heap-${++snapshots}.heapsnapshot` }),
      onResult: (r) => resolve(r),
    });
    scheduler.start();
    const next = scheduler.nextRuns();
    assert.deepEqual(Object.keys(next).sort(), ["basicProfile", "memorySnapshot"]);
    assert.equal(next.basicProfile?.getUTCHours(), 18, "03:00 in Tokyo is 18:00 UTC");
    const run = await snapped;
    await scheduler.stop();
    assert.equal(run.job, "memorySnapshot");
    assert.equal(run.ok, true);
    assert.deepEqual(run.value, { file: "heap-1.heapsnapshot" });
    assert.equal(profileCompletedPayload(run), null);
    assert.ok(log.lines().some((l) => l.msg === "schedule disabled" && l.job === "advancedProfile"));

    // Enabled but with no task to run: said so, not armed.
    const log2 = captureLogger();
    const s2 = new Scheduler({ config, logger: log2.logger });
    s2.start();
    assert.deepEqual(Object.keys(s2.nextRuns()), ["basicProfile"]);
    assert.ok(log2.lines().some((l) => l.job === "memorySnapshot" && /no task was given/.test(l.msg)));
    await s2.stop();
  });
});
