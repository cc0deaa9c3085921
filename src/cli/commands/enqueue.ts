import { Option } from "commander";
import { enqueueVideos } from "../../intake/index.js";
import type { CommandHost } from "../command.js";
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
      action(async (ctx, paths: string[], opts: { priority?: string; pipeline?: string; json?: boolean }) => {
        const config = ctx.config;
        const outcomes = await ctx.withStore((store) =>
          enqueueVideos(store, config, { paths, lane: opts.priority, pipeline: opts.pipeline, cwd: ctx.cwd, source: "cli" }),
        );
        const failed = outcomes.filter((o) => !o.ok);
        if (opts.json) {
          printJson(outcomes.map((o) => (o.ok ? { input: o.input, id: o.id, path: o.path, lane: o.video.lane, pipeline: o.video.pipeline } : { input: o.input, error: o.error, problem: o.problem })));
        } else {
          const ok = outcomes.filter((o) => o.ok);
          if (ok.length > 0) {
            process.stdout.write(
              formatTable(ok, [
                { header: "ID", value: (o) => (o.ok ? o.id : "") },
                { header: "LANE", value: (o) => (o.ok ? o.video.lane : "") },
                { header: "PIPELINE", value: (o) => (o.ok ? o.video.pipeline : "") },
                { header: "PATH", value: (o) => (o.ok ? o.path : "") },
              ]) + "\n",
            );
          }
          for (const f of failed) if (!f.ok) process.stderr.write(`vqd: ${f.error}\n`);
        }
        return failed.length > 0 ? EXIT.failed : EXIT.ok;
      }),
    );
}
