import { InvalidArgumentError, Option } from "commander";
import { VIDEO_STATES, type Video, type VideoState } from "../../domain/index.js";
import type { CommandHost } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { ago, formatTable, printJson } from "../output.js";
import { videoJson, type VideoJson } from "../../api/index.js";

export function registerList({ program, action }: CommandHost): void {
  program
    .command("list")
    .description("list videos, oldest first")
    .addOption(new Option("--state <state>", "only videos in this state").choices([...VIDEO_STATES]))
    .addOption(new Option("--lane <lane>", "only videos in this lane").choices(["high", "normal", "low"]))
    .option("--limit <n>", "at most this many (1-10000)", positiveInt, 100)
    .option("--after <id>", "start after this id (paging)")
    .option("--json", "print JSON")
    .action(
      action(async (ctx, opts: { state?: VideoState; lane?: Video["lane"]; limit: number; after?: string; json?: boolean }) => {
        const { result: videos } = await ctx.viaDaemon<"list", VideoJson[]>(
          "list",
          { state: opts.state, lane: opts.lane, limit: opts.limit, after: opts.after },
          async (store) => (await store.list({ state: opts.state, lane: opts.lane, limit: opts.limit, afterId: opts.after })).map(videoJson),
        );
        if (opts.json) {
          printJson(videos);
          return EXIT.ok;
        }
        if (videos.length === 0) {
          process.stdout.write("no videos\n");
          return EXIT.ok;
        }
        process.stdout.write(
          formatTable(videos, [
            { header: "ID", value: (v) => v.id },
            { header: "STATE", value: (v) => v.state },
            { header: "LANE", value: (v) => v.lane },
            { header: "PIPELINE", value: (v) => v.pipeline },
            { header: "ATTEMPTS", value: (v) => `${v.attempts}/${v.maxAttempts}`, align: "right" },
            { header: "STEP", value: (v) => v.currentStep ?? `${v.nextStep}/${v.steps.length}` },
            { header: "UPDATED", value: (v) => ago(v.updatedAt) },
            { header: "PATH", value: (v) => v.path, max: 80 },
          ]) + "\n",
        );
        return EXIT.ok;
      }),
    );
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1 || n > 10000) {
    throw new InvalidArgumentError("must be a whole number from 1 to 10000");
  }
  return n;
}
