/** Human output is aligned text; `--json` output is one JSON document on stdout. */
export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => string | number | null | undefined;
  readonly align?: "left" | "right";
  /** Longer values are cut with an ellipsis (paths can be very long). */
  readonly max?: number;
}

export function formatTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((r) => columns.map((c) => clip(printable(c.value(r)), c.max)));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => width(row[i] ?? ""))));
  const line = (values: readonly string[]): string =>
    values
      .map((v, i) => (columns[i]?.align === "right" ? v.padStart(widths[i] ?? 0) : pad(v, widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join("\n");
}

export function formatPairs(pairs: readonly (readonly [string, string | number | null | undefined])[]): string {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${(k + ":").padEnd(w + 1)} ${printable(v)}`).join("\n");
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

/** Control characters (a NUL or an escape in a file name) are shown escaped, never sent to the terminal. */
function printable(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return "-";
  // C0, DEL and C1 (U+0080-U+009F: U+009B is a one-character CSI to some terminals).
  // eslint-disable-next-line no-control-regex
  return String(v).replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** Cuts by code points, like width(), so an emoji is never split into a lone surrogate. */
function clip(s: string, max?: number): string {
  if (!max) return s;
  const chars = [...s];
  if (chars.length <= max) return s;
  return chars.slice(0, max - 1).join("") + "…";
}

const width = (s: string): number => [...s].length;
const pad = (s: string, w: number): string => s + " ".repeat(Math.max(0, w - width(s)));

export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return "-";
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}
