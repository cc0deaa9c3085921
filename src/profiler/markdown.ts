/** The readable report: verdict, targets, every figure with the reference app's and the change since last time, trend chart, environment. */
import { compareReports, formatNumber, formatPct, type FigureChange } from "./compare.js";
import type { ProfileReport, TargetResult } from "./types.js";

export interface MarkdownContext {
  /** The previous report of the same kind (and the same counts), to show what changed. */
  readonly previous: { readonly report: ProfileReport; readonly file: string } | null;
  /** The trend chart's file name (beside the report). */
  readonly svgFile: string;
  /** Runs in the trend chart. */
  readonly points: number;
}

const cell = (s: string): string => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

function table(header: readonly string[], rows: readonly (readonly string[])[], right: readonly number[] = []): string {
  const align = header.map((_, i) => (right.includes(i) ? "---:" : "---"));
  return [`| ${header.map(cell).join(" | ")} |`, `| ${align.join(" | ")} |`, ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`)].join("\n");
}

const SOURCE: Record<TargetResult["source"], string> = { reference: "reference app", design: "DESIGN.md", config: "vqd config" };

const verdictText = (pass: boolean | null): string => (pass === null ? "not measured" : pass ? "pass" : "**FAIL**");

const TITLE: Record<ProfileReport["kind"], string> = { basic: "performance report (basic suite)", advanced: "advanced profile" };

export function renderMarkdown(r: ProfileReport, ctx: MarkdownContext): string {
  const out: string[] = [];
  const when = r.startedAt.replace("T", " ").replace(/\.\d+Z$/, " UTC");
  out.push(`# vqd ${TITLE[r.kind]}: ${when}`, "");
  const v = r.verdict;
  if (v.pass) out.push(v.targets === 0 ? "**Verdict: PASS**: every step ran; no targets apply to these steps." : `**Verdict: PASS**: all ${v.targets} targets met.`);
  else {
    const missed = r.targets.filter((t) => t.pass === false).map((t) => t.label);
    const unmeasured = r.targets.filter((t) => t.pass === null).map((t) => t.label);
    const parts = [
      ...(missed.length > 0 ? [`${missed.length} of ${v.targets} targets missed (${missed.join("; ")})`] : []),
      ...(unmeasured.length > 0 ? [`${unmeasured.length} not measured (${unmeasured.join("; ")})`] : []),
      ...(v.errors > 0 ? [`${v.errors} step${v.errors === 1 ? "" : "s"} failed`] : []),
    ];
    out.push(`**Verdict: FAIL**: ${parts.join("; ")}.`);
  }
  out.push("");

  const changes = ctx.previous ? new Map(compareReports(ctx.previous.report, r).figures.map((c) => [c.id, c])) : null;
  out.push(
    table(
      ["run", ""],
      [
        ["started", when],
        ["duration", `${formatNumber(r.durationS)} s`],
        ["counts", r.quick ? "quick (small counts, for CI)" : "full (the reference app's counts)"],
        ["started by", r.trigger],
        ["compared with", ctx.previous ? `${ctx.previous.file} (${ctx.previous.report.startedAt})` : "nothing: the first report of its kind"],
        ["commit", r.environment.git ? `${r.environment.git.commit.slice(0, 12)}${r.environment.git.dirty ? " (with local changes)" : ""}` : "unknown"],
      ],
    ),
    "",
  );

  out.push("## Targets", "");
  out.push(
    table(
      ["target", "source", "measured", "verdict"],
      r.targets.map((t) => [t.label, SOURCE[t.source], formatNumber(t.value, t.unit), verdictText(t.pass)]),
      [2],
    ),
    "",
  );

  const headline = r.sections.flatMap((s) => s.figures.filter((f) => f.headline));
  if (headline.length > 0) {
    out.push("## Headline figures", "");
    out.push(
      table(
        ["figure", "now", "reference app", "previous", "change"],
        headline.map((f) => {
          const c = changes?.get(f.id);
          return [f.label, formatNumber(f.value, f.unit), formatNumber(f.reference ?? null, f.unit), formatNumber(c?.before ?? null, f.unit), changeText(c)];
        }),
        [1, 2, 3],
      ),
      "",
    );
    out.push(`## Trend`, "", `![headline figures over the last ${ctx.points} ${r.kind} runs](${ctx.svgFile})`, "");
    if (ctx.points < 2) out.push("_One run so far: the chart fills in as reports accumulate._", "");
  }

  for (const s of r.sections) {
    out.push(`## ${s.title}`, "");
    if (s.error) {
      out.push(`> **This step failed:** ${s.error.split("\n")[0]}`, "");
      const rest = s.error.split("\n").slice(1).filter(Boolean);
      if (rest.length > 0) out.push("```", ...rest, "```", "");
    }
    if (s.method) out.push(`_${s.method}_`, "");
    if (s.figures.length > 0) {
      out.push(
        table(
          ["figure", "value", "reference app", "previous", "change"],
          s.figures.map((f) => {
            const c = changes?.get(f.id);
            return [f.label, formatNumber(f.value, f.unit), formatNumber(f.reference ?? null, f.unit), formatNumber(c?.before ?? null, f.unit), changeText(c)];
          }),
          [1, 2, 3],
        ),
        "",
      );
    }
    for (const n of s.notes) out.push(`- ${n}`);
    if (s.notes.length > 0) out.push("");
    out.push(`Step time: ${formatNumber(s.durationS)} s.`, "");
  }

  const e = r.environment;
  out.push("## Environment", "");
  out.push(
    table(
      ["", ""],
      [
        ["vqd", e.vqd],
        ["node", `${e.node} (V8 ${e.v8})`],
        ["nats-server", e.natsServer ?? "unknown"],
        ["SQLite", e.sqlite ?? "unknown"],
        ["ffmpeg", e.ffmpeg ?? "not found"],
        ["OS", `${e.platform} ${e.osRelease} (${e.arch})`],
        ["CPU", `${e.cpuModel} x ${e.cpuCount}`],
        ["memory", `${formatNumber(e.totalMemoryMB)} MB`],
        ["host", e.hostname],
        ["git commit", e.git ? `${e.git.commit}${e.git.dirty ? " (dirty)" : ""}` : "unknown"],
      ],
    ),
    "",
  );
  const iso = r.isolation;
  out.push("## Isolation", "");
  out.push(
    `- NATS: ${iso.nats === "daemon" ? `the daemon's (configured) server, ${iso.natsUrl}` : `a nats-server started for this run, ${iso.natsUrl} (the daemon's was not reachable)`}`,
    `- JetStream streams \`${iso.stream}\` and subjects \`${iso.subjectPrefix}.*\`, all deleted after the run; never the live stream or subjects`,
    `- every database, data directory, clip and output in the scratch directory \`${iso.scratchDir}\`, removed after the run`,
    "",
  );
  return out.join("\n");
}

function changeText(c: FigureChange | undefined): string {
  if (!c || c.before === null || c.after === null) return "-";
  const word = c.direction === "better" ? " better" : c.direction === "worse" ? " **worse**" : "";
  return `${formatPct(c.pct)}${word}`;
}
