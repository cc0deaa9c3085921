/**
 * Periodic jobs on node-cron 4: the basic profile (daily by default), the advanced profile
 * (weekly) and the memory snapshot (weekly; its task is supplied by whoever owns snapshots).
 *
 * - No overlap: a job still running when its next time comes skips that time (node-cron's
 *   `noOverlap`), and the two profiling suites never run at the same time either (they would
 *   measure each other); every skip is logged.
 * - stop() stops the cron timers AND any run in progress: node-cron's stop() neither waits for a
 *   running task nor cancels it, so each run gets an AbortSignal here and stop() aborts it and
 *   waits for it to clean up (a stopped profiling run deletes its scratch data and writes no report).
 * - Every run, finished, failed or stopped, goes to the onResult hooks.
 */
import { createTask, type ScheduledTask } from "node-cron";
import type { Config, ScheduleConfig } from "../config/index.js";
// Types only: the profiler (and what it loads) is imported when a profiling run starts, so that
// arming the schedules costs the daemon's startup nothing.
import type { ProfileResult, RunProfileOptions } from "../profiler/index.js";
import type { Logger } from "../shared/logger.js";

export const SCHEDULE_JOBS = ["basicProfile", "advancedProfile", "memorySnapshot"] as const;
export type ScheduleJob = (typeof SCHEDULE_JOBS)[number];

const PROFILE_KIND = { basicProfile: "basic", advancedProfile: "advanced" } as const;

export interface TaskContext {
  readonly job: ScheduleJob;
  /** Aborted when the scheduler stops (daemon shutdown): finish up quickly and return or throw. */
  readonly signal: AbortSignal;
  /** The cron time this run is for. */
  readonly scheduledFor: Date;
  readonly logger: Logger;
}

/** A job's work. What it resolves with is passed on as ScheduledRun.value. */
export type ScheduledTaskFn = (ctx: TaskContext) => Promise<unknown>;

export interface ScheduledRun {
  readonly job: ScheduleJob;
  /** True when the task finished without throwing (a profile whose targets failed is still ok: see profile.report.verdict). */
  readonly ok: boolean;
  /** Stopped by stop() before it finished. */
  readonly aborted: boolean;
  readonly scheduledFor: Date;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly durationMs: number;
  /** Profiling jobs that finished: the report and its files. */
  readonly profile?: ProfileResult;
  /** What the task resolved with (the memory snapshot's result). */
  readonly value?: unknown;
  readonly error?: Error;
}

export type ResultHook = (run: ScheduledRun) => void | Promise<void>;

export interface SchedulerOptions {
  readonly config: Config;
  readonly logger: Logger;
  /** The memory-snapshot task. Without one, the memorySnapshot schedule is not armed (and that is logged). */
  readonly memorySnapshot?: ScheduledTaskFn;
  /** Called after every run; more can be added with onResult(). */
  readonly onResult?: ResultHook;
  /** Replaces a job's task (tests, or another implementation of a job). */
  readonly tasks?: Partial<Record<ScheduleJob, ScheduledTaskFn>>;
  /** Options for the scheduled profiling runs (quick counts in tests, a pipeline for the advanced one). */
  readonly profile?: Pick<RunProfileOptions, "quick" | "pipeline" | "plan" | "reportsDir">;
}

interface Running {
  readonly controller: AbortController;
  readonly done: Promise<void>;
}

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #log: Logger;
  readonly #hooks = new Set<ResultHook>();
  readonly #tasks = new Map<ScheduleJob, ScheduledTask>();
  readonly #running = new Map<ScheduleJob, Running>();
  #started = false;
  #stopping: Promise<void> | undefined;

  constructor(options: SchedulerOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: "scheduler" });
    if (options.onResult) this.#hooks.add(options.onResult);
  }

  /** Adds a result hook; returns the function that removes it. */
  onResult(hook: ResultHook): () => void {
    this.#hooks.add(hook);
    return () => this.#hooks.delete(hook);
  }

  /** Arms the enabled schedules. Idempotent; a stopped scheduler cannot be started again. */
  start(): void {
    if (this.#started || this.#stopping) return;
    this.#started = true;
    const { schedules } = this.#o.config;
    for (const job of SCHEDULE_JOBS) {
      const s: ScheduleConfig = schedules[job];
      if (!s.enabled) {
        this.#log.info({ job }, "schedule disabled");
        continue;
      }
      const fn = this.#taskFor(job);
      if (!fn) {
        this.#log.info({ job, cron: s.cron }, "schedule enabled but no task was given for it; not armed");
        continue;
      }
      const task = createTask(s.cron, (c) => this.#run(job, fn, c.date), {
        name: `vqd-${job}`,
        timezone: schedules.timezone,
        noOverlap: true,
        unref: true,
        logger: this.#cronLogger(job),
      });
      task.on("execution:overlap", (c) => {
        this.#log.warn({ job, scheduledFor: c.date.toISOString() }, "scheduled run skipped: the previous run of this job is still going");
      });
      this.#tasks.set(job, task);
      void task.start();
      this.#log.info({ job, cron: s.cron, timezone: schedules.timezone, next: task.getNextRun()?.toISOString() ?? null }, "schedule armed");
    }
  }

  /** Jobs running right now. */
  running(): ScheduleJob[] {
    return [...this.#running.keys()];
  }

  /** The next time of each armed job. */
  nextRuns(): Partial<Record<ScheduleJob, Date | null>> {
    return Object.fromEntries([...this.#tasks].map(([job, t]) => [job, t.getNextRun()]));
  }

  /** Stops the timers, aborts the runs in progress and waits for them to wind down. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    for (const t of this.#tasks.values()) await t.destroy();
    this.#tasks.clear();
    const running = [...this.#running.entries()];
    if (running.length > 0) this.#log.info({ jobs: running.map(([job]) => job) }, "stopping scheduled runs in progress");
    for (const [, r] of running) r.controller.abort(new Error("the scheduler is stopping (daemon shutdown)"));
    await Promise.allSettled(running.map(([, r]) => r.done));
  }

  #taskFor(job: ScheduleJob): ScheduledTaskFn | undefined {
    const custom = this.#o.tasks?.[job];
    if (custom) return custom;
    if (job === "memorySnapshot") return this.#o.memorySnapshot;
    const kind = PROFILE_KIND[job];
    return async ({ signal, logger }) => {
      const { lineProgress, runProfile } = await import("../profiler/index.js");
      return runProfile({
        kind,
        config: this.#o.config,
        signal,
        logger,
        trigger: "schedule",
        progress: lineProgress((line) => logger.info({ job }, line), `profile ${kind}`),
        ...this.#o.profile,
      });
    };
  }

  /** One cron firing. Never throws: node-cron would only log it. */
  async #run(job: ScheduleJob, fn: ScheduledTaskFn, scheduledFor: Date): Promise<void> {
    if (this.#stopping) return;
    const other = job !== "memorySnapshot" ? (["basicProfile", "advancedProfile"] as const).find((j) => j !== job && this.#running.has(j)) : undefined;
    if (other) {
      this.#log.warn({ job, scheduledFor: scheduledFor.toISOString(), running: other }, "scheduled run skipped: another profiling run is still going");
      return;
    }
    const controller = new AbortController();
    let finish: () => void = () => {};
    const done = new Promise<void>((r) => (finish = r));
    this.#running.set(job, { controller, done });
    const startedAt = new Date();
    this.#log.info({ job, scheduledFor: scheduledFor.toISOString() }, "scheduled run starting");
    let run: ScheduledRun;
    try {
      const value = await fn({ job, signal: controller.signal, scheduledFor, logger: this.#log.child({ job }) });
      const profile = job === "memorySnapshot" ? undefined : isProfileResult(value) ? value : undefined;
      run = { job, ok: true, aborted: false, scheduledFor, startedAt, finishedAt: new Date(), durationMs: Date.now() - startedAt.getTime(), ...(profile ? { profile } : { value }) };
      this.#log.info(
        { job, durationMs: run.durationMs, ...(profile ? { pass: profile.report.verdict.pass, failedTargets: profile.report.verdict.failed, report: profile.files?.json } : {}) },
        "scheduled run finished",
      );
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      const aborted = controller.signal.aborted || error.name === "ProfileAbortedError";
      run = { job, ok: false, aborted, scheduledFor, startedAt, finishedAt: new Date(), durationMs: Date.now() - startedAt.getTime(), error };
      if (aborted) this.#log.info({ job, durationMs: run.durationMs }, "scheduled run stopped");
      else this.#log.error({ job, err: error.message }, "scheduled run failed");
    }
    try {
      for (const hook of this.#hooks) {
        try {
          await hook(run);
        } catch (err) {
          this.#log.warn({ job, err: (err as Error).message }, "a scheduler result hook failed");
        }
      }
    } finally {
      this.#running.delete(job);
      finish();
    }
  }

  #cronLogger(job: ScheduleJob) {
    const log = this.#log;
    const text = (m: string | Error): string => (m instanceof Error ? m.message : m);
    return {
      info: (m: string) => log.debug({ job }, `node-cron: ${m}`),
      // Overlaps are logged by our own listener, with the job's name.
      warn: (m: string) => (/overlap/i.test(m) ? log.debug({ job }, `node-cron: ${m}`) : log.warn({ job }, `node-cron: ${m}`)),
      error: (m: string | Error, err?: Error) => log.error({ job, err: err?.message }, `node-cron: ${text(m)}`),
      debug: (m: string | Error) => log.debug({ job }, `node-cron: ${text(m)}`),
    };
  }
}

function isProfileResult(v: unknown): v is ProfileResult {
  return typeof v === "object" && v !== null && "report" in v && typeof (v as ProfileResult).report?.kind === "string";
}

/**
 * What to publish on `<prefix>.events.ProfileCompleted` for a scheduled profiling run: the
 * verdict, the headline figures and the report's file, small enough for a NATS message.
 */
export function profileCompletedPayload(run: ScheduledRun): Record<string, unknown> | null {
  if (run.job === "memorySnapshot") return null;
  const report = run.profile?.report;
  return {
    job: run.job,
    kind: PROFILE_KIND[run.job],
    ok: run.ok,
    aborted: run.aborted,
    scheduledFor: run.scheduledFor.toISOString(),
    startedAt: run.startedAt.toISOString(),
    finishedAt: run.finishedAt.toISOString(),
    durationMs: run.durationMs,
    ...(run.error ? { error: run.error.message } : {}),
    ...(report
      ? {
          pass: report.verdict.pass,
          verdict: report.verdict,
          failedTargets: report.targets.filter((t) => t.pass === false).map((t) => ({ id: t.id, label: t.label, value: t.value, threshold: t.threshold, unit: t.unit })),
          headline: report.sections.flatMap((s) => s.figures.filter((f) => f.headline).map((f) => ({ id: f.id, value: f.value, unit: f.unit }))),
          report: run.profile?.files?.json ?? null,
          markdown: run.profile?.files?.markdown ?? null,
        }
      : {}),
  };
}
