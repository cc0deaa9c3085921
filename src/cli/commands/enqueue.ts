import { resolve } from "node:path";
import { Option } from "commander";
import { enqueueOutcomeJson, type EnqueueResultJson } from "../../api/index.js";
import { enqueueVideos } from "../../intake/index.js";
import type { Lane } from "../../domain/index.js";
import type { CommandHost } from "../command.js";
import type { CliContext } from "../context.js";
import { EXIT } from "../exit-codes.js";
import { formatTable, printJson } from "../output.js";

export function registerEnqueue({ program, action }: CommandHost): void {
  program
    .command("enqueue")
    .description("add videos to the queue; prints one id per accepted file")
    .argument("<path...>", "video files, inside one of the allowedRoots")
    .addOption(new Option("--priority <lane>", "lane to queue in").choices(["high", "normal", "low"]))
    .option("--pipeline <name>", "pipeline to run (default: config defaultPipeline)")
    .option("--json", "print JSON")
    .action(
      action(async (ctx, paths: string[], opts: { priority?: Lane; pipeline?: string; json?: boolean }) => {
        // The root of the trace every accepted video's job continues (when telemetry exports).
        const span = (await ctx.telemetry()).span("vqd enqueue", {
          attributes: { "vq.paths": paths.length, "vq.lane": opts.priority, "vq.pipeline": opts.pipeline },
        });
        ctx.traceParent = span;
        try {
          return await enqueue(ctx, paths, opts, span.traceparent());
        } catch (err) {
          span.fail(err);
          throw err;
        } finally {
          span.end();
        }
      }),
    );
}

async function enqueue(ctx: CliContext, paths: string[], opts: { priority?: Lane; pipeline?: string; json?: boolean }, traceparent: string | undefined): Promise<number> {
  const config = ctx.config;
  const { result, daemon } = await ctx.viaDaemon<"enqueue", EnqueueResultJson[]>(
    "enqueue",
    { paths: paths.map((p) => resolve(ctx.cwd, p)), priority: opts.priority, pipeline: opts.pipeline, cwd: ctx.cwd },
    async (store) =>
      (await enqueueVideos(store, config, { paths, lane: opts.priority, pipeline: opts.pipeline, cwd: ctx.cwd, source: "cli", traceparent })).map(enqueueOutcomeJson),
  );
  // Report the user's own spelling of each path, not the absolute one sent to the daemon.
  const outcomes = result.map((o, i) => ({ ...o, input: paths[i] ?? o.input }));
  const failed = outcomes.filter((o): o is Extract<EnqueueResultJson, { error: string }> => "error" in o);
  const ok = outcomes.filter((o): o is Extract<EnqueueResultJson, { id: string }> => "id" in o);
  if (opts.json) {
    printJson(outcomes);
  } else {
    if (ok.length > 0) {
      process.stdout.write(
        formatTable(ok, [
          { header: "ID", value: (o) => o.id },
          { header: "LANE", value: (o) => o.lane },
          { header: "PIPELINE", value: (o) => o.pipeline },
          { header: "PATH", value: (o) => o.path },
        ]) + "\n",
      );
    }
    for (const f of failed) process.stderr.write(`vqd: ${f.error}\n`);
    if (!daemon && ok.length > 0) process.stderr.write("vqd: the daemon is not running; the videos are recorded and will be queued when it starts\n");
  }
  return failed.length > 0 ? EXIT.failed : EXIT.ok;
}
