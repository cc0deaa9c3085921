/** One profiling run: open the isolated context, run the suite's steps, judge, write the report. */
import BetterSqlite3 from "better-sqlite3";
import type { Config } from "../config/index.js";
import { silentLogger, type Logger } from "../shared/logger.js";
import { ADVANCED_FULL, ADVANCED_QUICK, advancedSteps, type AdvancedPlan } from "./advanced.js";
import { BASIC_FULL, BASIC_QUICK, basicSteps, type BasicPlan } from "./basic.js";
import { RunContext, type Injections } from "./context.js";
import { collectEnvironment } from "./environment.js";
import { now, round } from "./measure.js";
import { silentProgress, type Progress } from "./progress.js";
import { writeReport } from "./reports.js";
import { runSteps } from "./suite.js";
import { judge, targetsFor, verdictOf } from "./targets.js";
import type { ProfileReport, ProfileResult, SuiteKind } from "./types.js";

export interface RunProfileOptions {
  readonly kind: SuiteKind;
  readonly config: Config;
  /** Small counts (CI); default false: the reference app's counts. */
  readonly quick?: boolean;
  /** Advanced suite: the pipeline the concurrent-processing step runs (default "noop"). */
  readonly pipeline?: string;
  /** Aborting stops the run at the next check, cleans up, and rejects with ProfileAbortedError. */
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  readonly progress?: Progress;
  /** Recorded in the report: "cli", "schedule", "api" (default). */
  readonly trigger?: string;
  /** Write the report files (default true). */
  readonly write?: boolean;
  /** Default: config.reportsDir. */
  readonly reportsDir?: string;
  /** Counts to override (tests). */
  readonly plan?: Partial<BasicPlan> | Partial<AdvancedPlan>;
  /** Run only these steps (section ids, e.g. ["db", "queue"]); targets of the others are left out. */
  readonly only?: readonly string[];
  /** Deliberate slowness (tests only: proves a slow component fails its target). */
  readonly inject?: Injections;
}

function sqliteVersion(): string | null {
  try {
    const db = new BetterSqlite3(":memory:");
    try {
      return (db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v;
    } finally {
      db.close();
    }
  } catch {
    return null;
  }
}

export async function runProfile(o: RunProfileOptions): Promise<ProfileResult> {
  const quick = o.quick ?? false;
  const logger = o.logger ?? silentLogger;
  const progress = o.progress ?? silentProgress;
  const signal = o.signal ?? new AbortController().signal;
  const startedAt = new Date();
  const t0 = now();
  const all =
    o.kind === "basic"
      ? basicSteps({ ...(quick ? BASIC_QUICK : BASIC_FULL), ...(o.plan as Partial<BasicPlan> | undefined) })
      : advancedSteps({ ...(quick ? ADVANCED_QUICK : ADVANCED_FULL), ...(o.plan as Partial<AdvancedPlan> | undefined) }, { pipeline: o.pipeline });
  if (o.only) {
    const unknown = o.only.filter((id) => !all.some((s) => s.id === id));
    if (unknown.length > 0) throw new RangeError(`unknown ${o.kind} step(s): ${unknown.join(", ")} (steps: ${all.map((s) => s.id).join(", ")})`);
  }
  const steps = o.only ? all.filter((s) => o.only?.includes(s.id)) : all;
  const plan: Record<string, number | string | boolean> =
    o.kind === "basic"
      ? { ...(quick ? BASIC_QUICK : BASIC_FULL), ...(o.plan as Partial<BasicPlan> | undefined) }
      : { ...(quick ? ADVANCED_QUICK : ADVANCED_FULL), ...(o.plan as Partial<AdvancedPlan> | undefined), pipeline: o.pipeline ?? "noop" };
  const ctx = await RunContext.open({ config: o.config, quick, signal, progress, logger, inject: o.inject });
  logger.info({ kind: o.kind, quick, ...ctx.isolation() }, "profiling run starting");
  let report: ProfileReport;
  try {
    const sections = await runSteps(ctx, steps);
    const environment = await collectEnvironment({ natsServer: ctx.nats.version, sqlite: sqliteVersion(), ffmpegBinary: o.config.transcode.ffmpeg });
    const ran = new Set(steps.map((s) => s.id));
    const defs = targetsFor(o.kind, { leakThresholdKb: o.config.profiler.leakThresholdKbPerIteration }).filter((t) => ran.has(t.figure.split(".")[0] as string));
    const targets = judge(defs, sections);
    report = {
      schemaVersion: 1,
      kind: o.kind,
      quick,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      durationS: round((now() - t0) / 1000, 4),
      trigger: o.trigger ?? "api",
      options: { ...plan, ...(o.only ? { only: o.only.join(",") } : {}), ...(o.inject?.dbDelayMs ? { injectedDbDelayMs: o.inject.dbDelayMs } : {}) },
      environment,
      isolation: ctx.isolation(),
      sections,
      targets,
      verdict: verdictOf(targets, sections),
    };
  } finally {
    progress.end();
    await ctx.close();
  }
  if (o.write === false) return { report };
  const files = await writeReport(o.reportsDir ?? o.config.reportsDir, report, { retention: o.config.profiler.retention });
  logger.info({ kind: o.kind, pass: report.verdict.pass, failed: report.verdict.failed, report: files.json }, "profiling run finished");
  return { report, files };
}
