/** What `vqd doctor` reports: one result per check, as aligned text or JSON. */

export type CheckStatus = "ok" | "warn" | "fail";

export interface CheckResult {
  /** Short name of what was checked: `node`, `nats-server`, `database`, ... */
  readonly name: string;
  readonly status: CheckStatus;
  /** What was found. */
  readonly detail: string;
  /** What to do about a warning or a failure. */
  readonly fix?: string;
}

export interface DoctorReport {
  /** False when at least one check failed (warnings do not count). */
  readonly ok: boolean;
  readonly checks: readonly CheckResult[];
}

export const ok = (name: string, detail: string): CheckResult => ({ name, status: "ok", detail });
export const warn = (name: string, detail: string, fix?: string): CheckResult => ({ name, status: "warn", detail, ...(fix ? { fix } : {}) });
export const fail = (name: string, detail: string, fix?: string): CheckResult => ({ name, status: "fail", detail, ...(fix ? { fix } : {}) });

export function makeReport(checks: readonly CheckResult[]): DoctorReport {
  return { ok: checks.every((c) => c.status !== "fail"), checks };
}

const LABEL: Record<CheckStatus, string> = { ok: "ok", warn: "warn", fail: "FAIL" };

/** `ok    name         detail` / `FAIL  name         detail  (fix: hint)`, one line per check. */
export function formatReport(report: DoctorReport): string {
  const width = Math.max(0, ...report.checks.map((c) => c.name.length));
  const lines = report.checks.map((c) => {
    const fix = c.fix && c.status !== "ok" ? `  (fix: ${printable(c.fix)})` : "";
    return `${LABEL[c.status].padEnd(4)}  ${c.name.padEnd(width)}  ${printable(c.detail)}${fix}`;
  });
  return lines.join("\n") + "\n";
}

/** Control characters (from file names, server messages) are shown escaped, never sent to the terminal. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}
