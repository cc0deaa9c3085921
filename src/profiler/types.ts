/**
 * The shape of a profiling report (`schemas/profile-report.schema.json` describes the same JSON).
 * Every figure carries its unit; targets say what they judge, against what, and where they come from.
 */

export type SuiteKind = "basic" | "advanced";

/** Which direction is an improvement ("none": informational, never called better or worse). */
export type Better = "lower" | "higher" | "none";

export interface Figure {
  /** Stable key, `<section>.<name>`, e.g. `startup.median_s`. */
  readonly id: string;
  readonly label: string;
  /** null when the step could not measure it (its section then has an error). */
  readonly value: number | null;
  /** "s", "ms", "us", "MB", "%", "ops/s", "x" (a ratio), "" (a count)... */
  readonly unit: string;
  readonly better: Better;
  /** The reference app's published figure for the same thing, in the same unit, when it has one. */
  readonly reference?: number;
  /** Headline figures are charted in the trend and summarised first. */
  readonly headline?: boolean;
  /** Raw samples behind a summarised figure (startup runs, RSS samples...). */
  readonly samples?: readonly number[];
}

export interface Section {
  readonly id: string;
  readonly title: string;
  /** What was measured and how, in one sentence. */
  readonly method: string;
  readonly durationS: number;
  readonly figures: readonly Figure[];
  readonly notes: readonly string[];
  /** Set when the step failed; the figures it could not measure are null. */
  readonly error?: string;
}

export type TargetOp = "<" | "<=" | ">" | ">=";

export type TargetSource = "reference" | "design" | "config";

/** A target a suite is judged against (see targets.ts). */
export interface TargetDef {
  readonly id: string;
  readonly label: string;
  /** The figure judged. */
  readonly figure: string;
  readonly op: TargetOp;
  readonly threshold: number;
  readonly unit: string;
  /** reference: the reference app's own targets; design: DESIGN.md's goals; config: a threshold from vqd's config. */
  readonly source: TargetSource;
}

export interface TargetResult extends TargetDef {
  readonly value: number | null;
  /** null: not measured (the step failed or was skipped). */
  readonly pass: boolean | null;
}

export interface Environment {
  readonly node: string;
  readonly v8: string;
  /** null when no server version could be learned. */
  readonly natsServer: string | null;
  readonly sqlite: string | null;
  readonly ffmpeg: string | null;
  readonly vqd: string;
  readonly platform: string;
  readonly arch: string;
  readonly osRelease: string;
  readonly cpuModel: string;
  readonly cpuCount: number;
  readonly totalMemoryMB: number;
  readonly hostname: string;
  /** The commit vqd runs from, when it runs from a git checkout; `dirty` when it has local changes. */
  readonly git: { readonly commit: string; readonly dirty: boolean } | null;
}

export interface Isolation {
  /** Where the suite's NATS came from: the daemon's (or configured) server, or one started for the run. */
  readonly nats: "daemon" | "own";
  readonly natsUrl: string;
  /** JetStream stream and subject prefix used by the suite (never the live ones). */
  readonly stream: string;
  readonly subjectPrefix: string;
  /** Scratch directory (database, data dirs of spawned daemons, clips); removed after the run. */
  readonly scratchDir: string;
}

export interface Verdict {
  readonly pass: boolean;
  readonly targets: number;
  readonly passed: number;
  readonly failed: number;
  readonly notMeasured: number;
  /** Sections whose step failed. */
  readonly errors: number;
}

export interface ProfileReport {
  readonly schemaVersion: 1;
  readonly kind: SuiteKind;
  /** Small counts (CI smoke runs); the defaults are the reference app's counts. */
  readonly quick: boolean;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationS: number;
  /** How the run was started: "cli", "schedule", or "api" (a program calling runProfile). */
  readonly trigger: string;
  /** Counts and choices the run used. */
  readonly options: Readonly<Record<string, number | string | boolean>>;
  readonly environment: Environment;
  readonly isolation: Isolation;
  readonly sections: readonly Section[];
  readonly targets: readonly TargetResult[];
  readonly verdict: Verdict;
}

/** Where a finished run wrote its report. */
export interface ReportFiles {
  readonly json: string;
  readonly markdown: string;
  readonly svg: string;
  /** The previous report of the same kind the Markdown compares with, if any. */
  readonly previous: string | null;
  /** Report files removed by the retention rule. */
  readonly pruned: readonly string[];
}

export interface ProfileResult {
  readonly report: ProfileReport;
  /** Absent when the caller asked not to write files. */
  readonly files?: ReportFiles;
}
