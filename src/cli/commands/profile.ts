import { basename } from "node:path";
import type { CommandHost } from "../command.js";
import type { CliContext } from "../context.js";
import { EXIT } from "../exit-codes.js";
import { printJson } from "../output.js";

interface RunOpts {
  quick?: boolean;
  only?: string;
  json?: boolean;
  pipeline?: string;
}

export function registerProfile({ program, action }: CommandHost): void {
  const profile = program
    .command("profile")
    .description("profiling suites on the real components (isolated from live data), with JSON + Markdown reports in reportsDir");

  profile
    .command("basic")
    .description("startup, idle memory and CPU, database, event bus and queue; writes performance_report_<UTC time>.{json,md,svg}")
    .option("--quick", "small counts (a smoke run, e.g. in CI); default: the reference app's counts")
    .option("--only <steps>", "run only these steps, comma-separated: startup, idle, db, bus, queue")
    .option("--json", "print the report (and its file names) as JSON on stdout")
    .action(action((ctx, opts: RunOpts) => runSuite(ctx, "basic", opts)));

  profile
    .command("advanced")
    .description("concurrent processing, leak detection, event storm, DB stress, queue stress; writes advanced_profile_<UTC time>.{json,md,svg}")
    .option("--quick", "small counts (a smoke run, e.g. in CI); default: the reference app's counts")
    .option("--pipeline <name>", "pipeline for the concurrent-processing step (default noop); media steps run on clips made with ffmpeg")
    .option("--only <steps>", "run only these steps, comma-separated: concurrent, leak, storm, db_stress, queue_stress")
    .option("--json", "print the report (and its file names) as JSON on stdout")
    .action(action((ctx, opts: RunOpts) => runSuite(ctx, "advanced", opts)));

  profile
    .command("compare")
    .description("what changed between two JSON reports, and by how much")
    .argument("<before>", "the older report (.json)")
    .argument("<after>", "the newer report (.json)")
    .option("--threshold <percent>", "changes smaller than this count as the same", "5")
    .option("--json", "print JSON")
    .action(
      action(async (_ctx, before: string, after: string, opts: { threshold: string; json?: boolean }) => {
        const { compareReports, formatComparison, readReport } = await import("../../profiler/index.js");
        const threshold = Number(opts.threshold);
        if (!Number.isFinite(threshold) || threshold < 0) {
          process.stderr.write(`vqd: --threshold must be a number >= 0 (got ${JSON.stringify(opts.threshold)})\n`);
          return EXIT.usage;
        }
        const [a, b] = await Promise.all([readReport(before), readReport(after)]);
        for (const [file, r] of [[before, a], [after, b]] as const) {
          if (!r) {
            process.stderr.write(`vqd: ${file} is not a readable vqd profile report (JSON)\n`);
            return EXIT.failed;
          }
        }
        const c = compareReports(a as NonNullable<typeof a>, b as NonNullable<typeof b>, threshold);
        if (opts.json) printJson(c);
        else process.stdout.write(formatComparison(c, { before: basename(before), after: basename(after) }));
        return EXIT.ok;
      }),
    );
}

async function runSuite(ctx: CliContext, kind: "basic" | "advanced", opts: RunOpts): Promise<number> {
  const config = ctx.config;
  const { runProfile, terminalProgress, isProfileAborted } = await import("../../profiler/index.js");
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => controller.abort(new Error(`${signal} received`));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const { report, files } = await runProfile({
      kind,
      config,
      quick: opts.quick ?? false,
      pipeline: opts.pipeline,
      only: opts.only?.split(",").map((s) => s.trim()).filter(Boolean),
      signal: controller.signal,
      progress: terminalProgress(process.stderr, `profile ${kind}`),
      trigger: "cli",
    });
    if (opts.json) {
      printJson({ files, report });
    } else {
      const v = report.verdict;
      const lines = [
        v.targets === 0 && v.errors === 0
          ? "PASS: every step ran (no targets apply to these steps)"
          : `${v.pass ? "PASS" : "FAIL"}: ${v.passed} of ${v.targets} targets met${v.errors > 0 ? `, ${v.errors} step(s) failed` : ""}`,
        ...report.targets.filter((t) => t.pass !== true).map((t) => `  ${t.pass === null ? "not measured" : "missed"}: ${t.label} (measured ${t.value ?? "-"} ${t.unit})`),
        ...report.sections.filter((s) => s.error).map((s) => `  step failed: ${s.title}: ${s.error?.split("\n")[0]}`),
        `report: ${files?.markdown}`,
        `        ${files?.json}`,
        `trend:  ${files?.svg}`,
        ...(files && files.pruned.length > 0 ? [`pruned ${files.pruned.length} old report file(s) (profiler.retention ${config.profiler.retention})`] : []),
      ];
      process.stdout.write(lines.join("\n") + "\n");
    }
    return report.verdict.pass ? EXIT.ok : EXIT.failed;
  } catch (err) {
    if (err instanceof RangeError && /unknown .* step/.test(err.message)) {
      process.stderr.write(`vqd: ${err.message}\n`);
      return EXIT.usage;
    }
    if (isProfileAborted(err)) {
      process.stderr.write(`vqd: ${(err as Error).message}; no report written\n`);
      return EXIT.failed;
    }
    throw err;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
