/**
 * Report files in reportsDir: `performance_report_YYYYMMDD_HHMMSS.{json,md,svg}` (basic) and
 * `advanced_profile_YYYYMMDD_HHMMSS.{json,md,svg}` (advanced), UTC times. Writing one also finds
 * the previous report of the same kind (for "change since"), the past ones (for the trend chart),
 * and prunes the oldest beyond the retention count.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { renderMarkdown } from "./markdown.js";
import { renderTrendSvg } from "./svg.js";
import type { ProfileReport, ReportFiles, SuiteKind } from "./types.js";

export const REPORT_PREFIX: Record<SuiteKind, string> = {
  basic: "performance_report",
  advanced: "advanced_profile",
};

const NAME = /^(performance_report|advanced_profile)_(\d{8})_(\d{6})(?:_(\d+))?\.json$/;

/** `performance_report_20250102_030405` for a basic run started at that UTC time. */
export function reportBaseName(kind: SuiteKind, at: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, "0");
  const date = `${at.getUTCFullYear()}${p(at.getUTCMonth() + 1)}${p(at.getUTCDate())}`;
  const time = `${p(at.getUTCHours())}${p(at.getUTCMinutes())}${p(at.getUTCSeconds())}`;
  return `${REPORT_PREFIX[kind]}_${date}_${time}`;
}

export interface ReportEntry {
  readonly base: string;
  readonly json: string;
}

/** The JSON reports of one kind in dir, oldest first (names sort by time). */
export async function listReports(dir: string, kind: SuiteKind): Promise<ReportEntry[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const sortKey = (m: RegExpExecArray): string => `${m[2]}${m[3]}${String(Number(m[4] ?? 0)).padStart(4, "0")}`;
  return names
    .map((n) => NAME.exec(n))
    .filter((m): m is RegExpExecArray => m !== null && m[1] === REPORT_PREFIX[kind])
    .sort((a, b) => sortKey(a).localeCompare(sortKey(b)))
    .map((m) => ({ base: m[0].slice(0, -".json".length), json: join(dir, m[0]) }));
}

/** Reads a report; null when the file is not a vqd profile report. */
export async function readReport(file: string): Promise<ProfileReport | null> {
  try {
    const r = JSON.parse(await readFile(file, "utf8")) as Partial<ProfileReport>;
    return r && r.schemaVersion === 1 && (r.kind === "basic" || r.kind === "advanced") && Array.isArray(r.sections) ? (r as ProfileReport) : null;
  } catch {
    return null;
  }
}

async function writeAtomic(file: string, content: string): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(tmp, content, { mode: 0o644 });
  await rename(tmp, file);
}

/** How many past reports the trend chart shows. */
export const TREND_POINTS = 30;

export async function writeReport(dir: string, report: ProfileReport, options: { retention: number }): Promise<ReportFiles> {
  await mkdir(dir, { recursive: true });
  const past = await listReports(dir, report.kind);
  let base = reportBaseName(report.kind, new Date(report.startedAt));
  const taken = new Set(past.map((p) => p.base));
  for (let i = 2; taken.has(base); i++) base = `${reportBaseName(report.kind, new Date(report.startedAt))}_${i}`;

  // Past reports of the same kind, counts and steps (quick runs are not compared with full ones).
  const history: { report: ProfileReport; file: string }[] = [];
  for (const p of past.slice(-TREND_POINTS * 2)) {
    const r = await readReport(p.json);
    if (r && r.kind === report.kind && r.quick === report.quick && String(r.options.only ?? "") === String(report.options.only ?? "")) history.push({ report: r, file: p.json });
  }
  const recent = history.slice(-(TREND_POINTS - 1));
  const previous = recent[recent.length - 1] ?? null;

  const files = {
    json: join(dir, `${base}.json`),
    markdown: join(dir, `${base}.md`),
    svg: join(dir, `${base}.svg`),
  };
  await writeAtomic(files.json, JSON.stringify(report, null, 2) + "\n");
  await writeAtomic(files.svg, renderTrendSvg([...recent.map((h) => h.report), report]));
  await writeAtomic(
    files.markdown,
    renderMarkdown(report, { previous: previous ? { report: previous.report, file: basename(previous.file) } : null, svgFile: basename(files.svg), points: recent.length + 1 }),
  );
  const pruned = await pruneReports(dir, report.kind, options.retention);
  return { ...files, previous: previous?.file ?? null, pruned };
}

/** Deletes the oldest reports of a kind (each with its .md and .svg) beyond `keep`; 0 keeps all. */
export async function pruneReports(dir: string, kind: SuiteKind, keep: number): Promise<string[]> {
  if (keep <= 0) return [];
  const all = await listReports(dir, kind);
  const removed: string[] = [];
  for (const r of all.slice(0, Math.max(0, all.length - keep))) {
    for (const ext of [".json", ".md", ".svg"]) {
      const f = join(dir, r.base + ext);
      try {
        await rm(f);
        removed.push(f);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
  }
  return removed;
}
