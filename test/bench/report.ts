/** Goal checks, the readable table, and the flat JSON object. */
import type { BenchResult, Figure, Goal } from "./types.js";

export interface GroupOutcome {
  readonly name: string;
  readonly description?: string;
  readonly result?: BenchResult;
  /** Set when the group crashed. */
  readonly error?: Error;
}

export interface Verdict {
  /** ours / baseline, when the figure has a baseline. */
  readonly ratio?: number;
  /** undefined: no goal (or no baseline to judge a ratio goal against). */
  readonly pass?: boolean;
}

export function judge(figure: Figure, baseline: Figure | undefined): Verdict {
  const ratio = baseline && baseline.value > 0 ? figure.value / baseline.value : undefined;
  const goal = figure.goal;
  if (!goal) return { ratio };
  switch (goal.kind) {
    case "ratio-max":
      return { ratio, pass: ratio === undefined ? undefined : ratio <= goal.value };
    case "ratio-min":
      return { ratio, pass: ratio === undefined ? undefined : ratio >= goal.value };
    case "min":
      return { ratio, pass: figure.value >= goal.value };
    case "max":
      return { ratio, pass: figure.value <= goal.value };
  }
}

/** Figures that another figure of the group uses as its baseline: shown in its row, not on their own. */
function baselineKeys(figures: readonly Figure[]): Set<string> {
  return new Set(figures.flatMap((f) => (f.baselineKey ? [f.baselineKey] : [])));
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString("en-US");
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

const withUnit = (value: number | undefined, unit: string): string => (value === undefined ? "-" : `${formatNumber(value)} ${unit}`);

function formatGoal(goal: Goal | undefined, unit: string): string {
  if (!goal) return "-";
  switch (goal.kind) {
    case "ratio-max":
      return `<= ${goal.value}x`;
    case "ratio-min":
      return `>= ${goal.value}x`;
    case "min":
      return `>= ${formatNumber(goal.value)} ${unit}`;
    case "max":
      return `<= ${formatNumber(goal.value)} ${unit}`;
  }
}

/** One aligned table for a group: figure, ours, baseline, ratio, goal, reference, result. */
export function formatGroup(outcome: GroupOutcome): string {
  const title = outcome.description ? `${outcome.name}: ${outcome.description}` : outcome.name;
  if (outcome.error) return `== ${title}\nCRASHED: ${outcome.error.stack ?? outcome.error.message}\n`;
  const figures = outcome.result?.figures ?? [];
  const byKey = new Map(figures.map((f) => [f.key, f]));
  const hidden = baselineKeys(figures);
  const header = ["figure", "ours", "baseline", "ratio", "goal", "reference", "result"];
  const rows: string[][] = [];
  for (const f of figures) {
    if (hidden.has(f.key)) continue;
    const baseline = f.baselineKey ? byKey.get(f.baselineKey) : undefined;
    const v = judge(f, baseline);
    rows.push([
      f.label ? `${f.label} [${f.key}]` : f.key,
      withUnit(f.value, f.unit),
      withUnit(baseline?.value, baseline?.unit ?? f.unit),
      v.ratio === undefined ? "-" : `${v.ratio.toFixed(2)}x`,
      formatGoal(f.goal, f.unit),
      withUnit(f.reference, f.unit),
      v.pass === undefined ? "-" : v.pass ? "pass" : "FAIL",
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  // Text columns left-aligned, numbers right-aligned.
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  const out = [`== ${title}`, line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)];
  for (const note of outcome.result?.notes ?? []) out.push(`  * ${note}`);
  return out.join("\n") + "\n";
}

/** Counts of goals met and missed over all groups. */
export function tally(outcomes: readonly GroupOutcome[]): { pass: number; fail: number; crashed: number } {
  let pass = 0;
  let fail = 0;
  let crashed = 0;
  for (const o of outcomes) {
    if (o.error) crashed++;
    const figures = o.result?.figures ?? [];
    const byKey = new Map(figures.map((f) => [f.key, f]));
    for (const f of figures) {
      const v = judge(f, f.baselineKey ? byKey.get(f.baselineKey) : undefined);
      if (v.pass === true) pass++;
      if (v.pass === false) fail++;
    }
  }
  return { pass, fail, crashed };
}

/** `db.insert_us` -> `db.reference_insert_us`. */
export function referenceKey(key: string): string {
  const dot = key.indexOf(".");
  return dot < 0 ? `reference_${key}` : `${key.slice(0, dot)}.reference_${key.slice(dot + 1)}`;
}

/** Every figure of every group as one flat object of numbers, plus the reference figures. */
export function toJson(outcomes: readonly GroupOutcome[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of outcomes) {
    for (const f of o.result?.figures ?? []) {
      out[f.key] = roundForJson(f.value);
      if (f.reference !== undefined) out[referenceKey(f.key)] = f.reference;
    }
  }
  return out;
}

/** Four significant digits are more than the noise allows. */
const roundForJson = (v: number): number => (Number.isFinite(v) ? Number(v.toPrecision(4)) : v);
