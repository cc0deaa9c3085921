/**
 * The contract between the bench runner and the bench groups (db, queue, bus, pipeline,
 * telemetry...). A group measures, and returns figures; the runner prints and checks goals.
 */

/** How a figure is judged. Ratios are ours / baseline (so "ratio-max 1.5" = at most 1.5x the baseline). */
export type GoalKind = "ratio-max" | "ratio-min" | "min" | "max";

export interface Goal {
  readonly kind: GoalKind;
  readonly value: number;
}

export interface Figure {
  /** Flat JSON key, `<group>.<name>`, e.g. `db.insert_us`. */
  readonly key: string;
  readonly value: number;
  /** Unit as printed: "us", "ms", "ops/s", "MB/s"... */
  readonly unit: string;
  /** Human-readable name for the table; defaults to the key. */
  readonly label?: string;
  /** Key of another figure of the same group measured as the baseline for this one. */
  readonly baselineKey?: string;
  readonly goal?: Goal;
  /** A figure published for a reference implementation, shown for comparison only (never a goal). */
  readonly reference?: number;
}

export interface BenchResult {
  readonly figures: readonly Figure[];
  /** Remarks printed under the group's table (not in the JSON output). */
  readonly notes?: readonly string[];
}

export interface BenchContext {
  /** Progress output: goes to stderr so that `--json` keeps stdout to one JSON object. */
  log(message: string): void;
  /** Fewer operations, for a smoke run of the harness (numbers are noisier). */
  readonly quick: boolean;
}

export interface BenchGroup {
  /** Short name used by `--only` and as the key prefix: "db", "queue"... */
  readonly name: string;
  readonly description?: string;
  run(ctx: BenchContext): Promise<BenchResult>;
}
