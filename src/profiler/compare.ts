/** What changed between two reports, and by how much (`vqd profile compare`, and "change since previous"). */
import type { Better, Figure, ProfileReport } from "./types.js";

export type Direction = "better" | "worse" | "same" | "changed" | "new" | "gone";

export interface FigureChange {
  readonly id: string;
  readonly label: string;
  readonly unit: string;
  readonly better: Better;
  readonly before: number | null;
  readonly after: number | null;
  readonly delta: number | null;
  /** Relative change in percent of `before`; null when either side is missing or before is 0. */
  readonly pct: number | null;
  readonly direction: Direction;
}

export interface TargetChange {
  readonly id: string;
  readonly label: string;
  readonly before: boolean | null;
  readonly after: boolean | null;
}

export interface Comparison {
  readonly kind: string;
  readonly before: { readonly startedAt: string; readonly quick: boolean; readonly commit: string | null };
  readonly after: { readonly startedAt: string; readonly quick: boolean; readonly commit: string | null };
  /** Changes smaller than this (percent) count as "same". */
  readonly thresholdPct: number;
  readonly figures: readonly FigureChange[];
  /** Targets whose verdict differs between the two. */
  readonly targets: readonly TargetChange[];
  readonly warnings: readonly string[];
}

function figures(r: ProfileReport): Map<string, Figure> {
  const m = new Map<string, Figure>();
  for (const s of r.sections) for (const f of s.figures) m.set(f.id, f);
  return m;
}

export function compareReports(before: ProfileReport, after: ProfileReport, thresholdPct = 5): Comparison {
  const warnings: string[] = [];
  if (before.kind !== after.kind) warnings.push(`comparing a ${before.kind} report with a ${after.kind} report: only figures both have are compared`);
  if (before.quick !== after.quick) warnings.push("one report is a --quick run and the other is not: counts differ, so do the figures");
  if (before.environment.hostname !== after.environment.hostname || before.environment.cpuModel !== after.environment.cpuModel) {
    warnings.push(`different machines (${before.environment.hostname}, ${before.environment.cpuModel} / ${after.environment.hostname}, ${after.environment.cpuModel})`);
  }
  const a = figures(before);
  const b = figures(after);
  const ids = [...new Set([...a.keys(), ...b.keys()])];
  const out: FigureChange[] = ids.map((id) => {
    const fa = a.get(id);
    const fb = b.get(id);
    const f = (fb ?? fa) as Figure;
    const va = fa?.value ?? null;
    const vb = fb?.value ?? null;
    const delta = va !== null && vb !== null ? vb - va : null;
    const pct = delta !== null && va !== null && va !== 0 ? (delta / Math.abs(va)) * 100 : null;
    let direction: Direction;
    if (!fa || va === null) direction = vb === null ? "same" : "new";
    else if (!fb || vb === null) direction = "gone";
    else if (delta === 0 || (pct !== null && Math.abs(pct) < thresholdPct)) direction = "same";
    else if (f.better === "none") direction = "changed";
    else direction = (f.better === "higher") === (delta as number) > 0 ? "better" : "worse";
    return { id, label: f.label, unit: f.unit, better: f.better, before: va, after: vb, delta, pct, direction };
  });
  const ta = new Map(before.targets.map((t) => [t.id, t]));
  const targets: TargetChange[] = [];
  for (const t of after.targets) {
    const prev = ta.get(t.id);
    if (!prev || prev.pass !== t.pass) targets.push({ id: t.id, label: t.label, before: prev?.pass ?? null, after: t.pass });
  }
  const meta = (r: ProfileReport) => ({ startedAt: r.startedAt, quick: r.quick, commit: r.environment.git?.commit ?? null });
  return { kind: after.kind, before: meta(before), after: meta(after), thresholdPct, figures: out, targets, warnings };
}

export function formatNumber(v: number | null, unit = ""): string {
  if (v === null || !Number.isFinite(v)) return "-";
  const abs = Math.abs(v);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 10 ? 2 : abs >= 1 ? 3 : 4;
  const text = v.toLocaleString("en-US", { maximumFractionDigits: digits });
  return unit ? `${text} ${unit}` : text;
}

export function formatPct(p: number | null): string {
  if (p === null || !Number.isFinite(p)) return "-";
  return `${p > 0 ? "+" : ""}${p.toFixed(Math.abs(p) < 10 ? 1 : 0)}%`;
}

const MARK: Record<Direction, string> = { better: "better", worse: "WORSE", same: "same", changed: "changed", new: "new", gone: "gone" };

/** Plain-text table for a terminal. */
export function formatComparison(c: Comparison, names: { before: string; after: string }): string {
  const lines: string[] = [];
  lines.push(`${c.kind} profile: ${names.before} (${c.before.startedAt}) -> ${names.after} (${c.after.startedAt})`);
  for (const w of c.warnings) lines.push(`warning: ${w}`);
  const rows = c.figures.map((f) => [f.label, formatNumber(f.before, f.unit), formatNumber(f.after, f.unit), formatPct(f.pct), MARK[f.direction]]);
  const header = ["figure", "before", "after", "change", ""];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]): string =>
    r
      .map((v, i) => (i === 1 || i === 2 || i === 3 ? v.padStart(widths[i] ?? 0) : v.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  lines.push("", line(header), ...rows.map(line));
  const better = c.figures.filter((f) => f.direction === "better").length;
  const worse = c.figures.filter((f) => f.direction === "worse").length;
  lines.push("", `${better} better, ${worse} worse, ${c.figures.length - better - worse} about the same or informational (changes under ${c.thresholdPct}% count as the same)`);
  if (c.targets.length > 0) {
    lines.push("targets whose verdict changed:");
    const v = (p: boolean | null): string => (p === null ? "not measured" : p ? "pass" : "FAIL");
    for (const t of c.targets) lines.push(`  ${t.label}: ${v(t.before)} -> ${v(t.after)}`);
  }
  return lines.join("\n") + "\n";
}
