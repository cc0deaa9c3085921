import { Argument } from "commander";
import type { Lane, VideoCommand } from "../../domain/index.js";
import type { CommandHost } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { printJson } from "../output.js";
import { videoJson } from "../video-json.js";
import type { CliContext } from "../context.js";

/** cancel, retry and priority: one command each on one video, refused when the state forbids it. */
export function registerControl({ program, action }: CommandHost): void {
  program
    .command("cancel")
    .description("cancel a video that has not finished")
    .argument("<id>", "video id")
    .option("--reason <text>", "recorded with the cancellation", "cancelled by operator")
    .option("--json", "print JSON")
    .action(action((ctx, id: string, opts: { reason: string; json?: boolean }) => run(ctx, id, { type: "CancelVideo", reason: opts.reason }, opts.json)));

  program
    .command("retry")
    .description("send a dead-lettered video back to its lane; it resumes at the step that failed")
    .argument("<id>", "video id")
    .option("--json", "print JSON")
    .action(action((ctx, id: string, opts: { json?: boolean }) => run(ctx, id, { type: "RetryVideo" }, opts.json)));

  program
    .command("priority")
    .description("move a waiting video to another lane")
    .argument("<id>", "video id")
    .addArgument(new Argument("<lane>", "new lane").choices(["high", "normal", "low"]))
    .option("--json", "print JSON")
    .action(action((ctx, id: string, lane: Lane, opts: { json?: boolean }) => run(ctx, id, { type: "ChangePriority", lane }, opts.json)));
}

async function run(ctx: CliContext, id: string, command: VideoCommand, json?: boolean): Promise<number> {
  const result = await ctx.withStore((store) => store.execute(id, command, { source: "cli" }));
  if (json) printJson(videoJson(result.video));
  else process.stdout.write(`${id}: ${result.events.map((e) => e.type).join(", ")} -> ${result.video.state} (lane ${result.video.lane})\n`);
  return EXIT.ok;
}
