/** Profiling suites (basic, advanced) on the real components, with JSON + Markdown reports. */
export { runProfile, type RunProfileOptions } from "./run.js";
export { BASIC_FULL, BASIC_QUICK, type BasicPlan } from "./basic.js";
export { ADVANCED_FULL, ADVANCED_QUICK, type AdvancedPlan } from "./advanced.js";
export type { Injections } from "./context.js";
export { compareReports, formatComparison, type Comparison, type FigureChange } from "./compare.js";
export { listReports, pruneReports, readReport, reportBaseName, writeReport, REPORT_PREFIX } from "./reports.js";
export { renderMarkdown } from "./markdown.js";
export { renderTrendSvg } from "./svg.js";
export { lineProgress, silentProgress, terminalProgress, type Progress } from "./progress.js";
export { ProfileAbortedError, isProfileAborted } from "./measure.js";
export { targetsFor } from "./targets.js";
export type * from "./types.js";
