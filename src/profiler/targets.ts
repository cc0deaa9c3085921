/**
 * What each suite is judged against: the reference app's own targets (startup < 3 s, idle memory
 * < 150 MB, idle CPU < 5%), DESIGN.md's goals, and thresholds from vqd's config.
 */
import type { Figure, Section, SuiteKind, TargetDef, TargetOp, TargetResult, Verdict } from "./types.js";

export interface TargetSettings {
  /** profiler.leakThresholdKbPerIteration */
  readonly leakThresholdKb: number;
}

export function targetsFor(kind: SuiteKind, settings: TargetSettings): TargetDef[] {
  if (kind === "basic") {
    return [
      { id: "startup.under_3s", label: "daemon start to ready < 3 s", figure: "startup.median_s", op: "<", threshold: 3, unit: "s", source: "reference" },
      { id: "startup.vs_node", label: "daemon start to ready <= 5x `node -e 0`", figure: "startup.vs_node_x", op: "<=", threshold: 5, unit: "x", source: "design" },
      { id: "idle.memory_150", label: "idle memory < 150 MB", figure: "idle.rss_max_mb", op: "<", threshold: 150, unit: "MB", source: "reference" },
      { id: "idle.memory_90", label: "idle RSS <= 90 MB", figure: "idle.rss_max_mb", op: "<=", threshold: 90, unit: "MB", source: "design" },
      { id: "idle.cpu_5", label: "idle CPU < 5%", figure: "idle.cpu_pct", op: "<", threshold: 5, unit: "%", source: "reference" },
      { id: "idle.cpu_0_5", label: "idle CPU <= 0.5%", figure: "idle.cpu_pct", op: "<=", threshold: 0.5, unit: "%", source: "design" },
      { id: "db.append_vs_raw", label: "append through the data layer <= 1.5x raw better-sqlite3", figure: "db.append_vs_raw_x", op: "<=", threshold: 1.5, unit: "x", source: "design" },
      { id: "db.read_vs_raw", label: "read by id through the data layer <= 1.5x raw better-sqlite3", figure: "db.read_vs_raw_x", op: "<=", threshold: 1.5, unit: "x", source: "design" },
      { id: "db.update_vs_raw", label: "update through the data layer <= 1.5x raw better-sqlite3", figure: "db.update_vs_raw_x", op: "<=", threshold: 1.5, unit: "x", source: "design" },
      { id: "bus.delivered", label: "event bus: 100% of events delivered", figure: "bus.delivered_pct", op: ">=", threshold: 100, unit: "%", source: "design" },
    ];
  }
  return [
    {
      id: "leak.growth",
      label: `heap growth <= ${settings.leakThresholdKb} KB per create/close iteration`,
      figure: "leak.growth_kb_per_iteration",
      op: "<=",
      threshold: settings.leakThresholdKb,
      unit: "KB",
      source: "config",
    },
    { id: "storm.delivered", label: "event storm: 100% of events delivered", figure: "storm.delivered_pct", op: ">=", threshold: 100, unit: "%", source: "design" },
    { id: "storm.vs_raw", label: "event storm >= 0.85x raw nats.js pub->sub", figure: "storm.vs_raw_x", op: ">=", threshold: 0.85, unit: "x", source: "design" },
    { id: "db_stress.ops", label: "DB stress >= 7,700 ops/s (10x the reference)", figure: "db_stress.ops_s", op: ">=", threshold: 7700, unit: "ops/s", source: "design" },
  ];
}

export function compare(value: number, op: TargetOp, threshold: number): boolean {
  switch (op) {
    case "<":
      return value < threshold;
    case "<=":
      return value <= threshold;
    case ">":
      return value > threshold;
    case ">=":
      return value >= threshold;
  }
}

export function judge(defs: readonly TargetDef[], sections: readonly Section[]): TargetResult[] {
  const figures = new Map<string, Figure>();
  for (const s of sections) for (const f of s.figures) figures.set(f.id, f);
  return defs.map((d) => {
    const v = figures.get(d.figure)?.value;
    const value = typeof v === "number" && Number.isFinite(v) ? v : null;
    return { ...d, value, pass: value === null ? null : compare(value, d.op, d.threshold) };
  });
}

export function verdictOf(targets: readonly TargetResult[], sections: readonly Section[]): Verdict {
  const passed = targets.filter((t) => t.pass === true).length;
  const failed = targets.filter((t) => t.pass === false).length;
  const notMeasured = targets.filter((t) => t.pass === null).length;
  const errors = sections.filter((s) => s.error !== undefined).length;
  return { pass: failed === 0 && notMeasured === 0 && errors === 0, targets: targets.length, passed, failed, notMeasured, errors };
}
