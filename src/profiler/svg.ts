/**
 * The trend chart beside each report: one small panel per headline figure, the runs of the same
 * kind oldest to newest left to right, each panel on its own scale. Plain SVG, no scripts.
 */
import { formatNumber } from "./compare.js";
import type { Figure, ProfileReport } from "./types.js";

const PANEL_W = 360;
const PANEL_H = 150;
const COLS = 2;
const PAD = { left: 64, right: 16, top: 34, bottom: 26 };

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

function headlines(r: ProfileReport): Figure[] {
  return r.sections.flatMap((s) => s.figures.filter((f) => f.headline));
}

export function renderTrendSvg(reports: readonly ProfileReport[]): string {
  const newest = reports[reports.length - 1];
  const heads = newest ? headlines(newest) : [];
  const rows = Math.max(1, Math.ceil(heads.length / COLS));
  const width = COLS * PANEL_W;
  const height = 30 + rows * PANEL_H;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  const kind = newest?.kind ?? "profile";
  out.push(`<text x="8" y="19" font-size="14" font-weight="bold">vqd ${esc(kind)} profile: headline figures over the last ${reports.length} run${reports.length === 1 ? "" : "s"}</text>`);
  if (heads.length === 0) out.push(`<text x="8" y="50">no headline figures</text>`);
  heads.forEach((h, i) => {
    const x0 = (i % COLS) * PANEL_W;
    const y0 = 30 + Math.floor(i / COLS) * PANEL_H;
    const values = reports.map((r) => r.sections.flatMap((s) => s.figures).find((f) => f.id === h.id)?.value ?? null);
    out.push(panel(x0, y0, h, values, reports));
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

function panel(x0: number, y0: number, f: Figure, values: readonly (number | null)[], reports: readonly ProfileReport[]): string {
  const parts: string[] = [];
  const arrow = f.better === "higher" ? " (higher is better)" : f.better === "lower" ? " (lower is better)" : "";
  parts.push(`<g transform="translate(${x0},${y0})">`);
  parts.push(`<rect x="4" y="4" width="${PANEL_W - 8}" height="${PANEL_H - 8}" fill="#fafafa" stroke="#dddddd"/>`);
  parts.push(`<text x="12" y="20" font-weight="bold">${esc(f.label)}${f.unit ? ` [${esc(f.unit)}]` : ""}</text>`);
  parts.push(`<text x="12" y="32" fill="#777777">${esc(arrow.trim())}</text>`);
  const present = values.filter((v): v is number => v !== null && Number.isFinite(v));
  const plotW = PANEL_W - PAD.left - PAD.right;
  const plotH = PANEL_H - PAD.top - PAD.bottom;
  if (present.length === 0) {
    parts.push(`<text x="${PAD.left}" y="${PAD.top + plotH / 2}">not measured</text></g>`);
    return parts.join("");
  }
  let lo = Math.min(...present);
  let hi = Math.max(...present);
  if (lo === hi) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= d;
    hi += d;
  } else {
    const d = (hi - lo) * 0.1;
    lo -= d;
    hi += d;
  }
  const n = values.length;
  const xOf = (i: number): number => PAD.left + (n === 1 ? plotW / 2 : (i / (n - 1)) * plotW);
  const yOf = (v: number): number => PAD.top + plotH - ((v - lo) / (hi - lo)) * plotH;
  parts.push(`<line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${PAD.top + plotH}" stroke="#999999"/>`);
  parts.push(`<line x1="${PAD.left}" y1="${PAD.top + plotH}" x2="${PAD.left + plotW}" y2="${PAD.top + plotH}" stroke="#999999"/>`);
  parts.push(`<text x="${PAD.left - 4}" y="${PAD.top + 4}" text-anchor="end" fill="#555555">${esc(formatNumber(hi))}</text>`);
  parts.push(`<text x="${PAD.left - 4}" y="${PAD.top + plotH}" text-anchor="end" fill="#555555">${esc(formatNumber(lo))}</text>`);
  const first = reports[0]?.startedAt.slice(0, 10) ?? "";
  const last = reports[reports.length - 1]?.startedAt.slice(0, 10) ?? "";
  parts.push(`<text x="${PAD.left}" y="${PANEL_H - 10}" fill="#555555">${esc(first)}</text>`);
  parts.push(`<text x="${PAD.left + plotW}" y="${PANEL_H - 10}" text-anchor="end" fill="#555555">${esc(last)}</text>`);
  // Line segments between measured runs; a run that did not measure the figure breaks the line.
  let seg: string[] = [];
  const flush = (): void => {
    if (seg.length > 1) parts.push(`<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${seg.join(" ")}"/>`);
    seg = [];
  };
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      flush();
      return;
    }
    seg.push(`${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}`);
    const isLast = i === n - 1;
    parts.push(`<circle cx="${xOf(i).toFixed(1)}" cy="${yOf(v).toFixed(1)}" r="${isLast ? 4 : 2.5}" fill="${isLast ? "#d62728" : "#1f77b4"}"><title>${esc(`${reports[i]?.startedAt ?? ""}: ${formatNumber(v, f.unit)}`)}</title></circle>`);
  });
  flush();
  const lastValue = values[n - 1];
  if (lastValue !== null && lastValue !== undefined) {
    parts.push(`<text x="${PANEL_W - 12}" y="20" text-anchor="end" fill="#d62728" font-weight="bold">${esc(formatNumber(lastValue, f.unit))}</text>`);
  }
  parts.push("</g>");
  return parts.join("");
}
