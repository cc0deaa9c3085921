import { Argument } from "commander";
import type { Lane, VideoCommand } from "../../domain/index.js";
import type { CommandHost } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { printJson } from "../output.js";
import { videoJson, type VideoJson } from "../../api/index.js";
import type { CliContext } from "../context.js";
import type { Request } from "../../api/index.js";

/** cancel, retry and priority: one command each on one video, refused when the state forbids it. */
export function registerControl({ program, action }: CommandHost): void {
  program
    .command("cancel")
    .description("cancel a video that has not finished")
    .argument("<id>", "video id")
    .option("--reason <text>", "recorded with the cancellation", "cancelled by operator")
    .option("--json", "print JSON")
    .action(action((ctx, id: string, opts: { reason: string; json?: boolean }) => run(ctx, "cancel", { id, reason: opts.reason }, { type: "CancelVideo", reason: opts.reason }, opts.json)));

  program
    .command("retry")
    .description("send a dead-lettered video back to its lane; it resumes at the step that failed")
    .argument("<id>", "video id")
    .option("--json", "print JSON")
    .action(action((ctx, id: string, opts: { json?: boolean }) => run(ctx, "retry", { id }, { type: "RetryVideo" }, opts.json)));

  program
    .command("priority")
    .description("move a waiting video to another lane")
    .argument("<id>", "video id")
    .addArgument(new Argument("<lane>", "new lane").choices(["high", "normal", "low"]))
    .option("--json", "print JSON")
    .action(action((ctx, id: string, lane: Lane, opts: { json?: boolean }) => run(ctx, "priority", { id, lane }, { type: "ChangePriority", lane }, opts.json)));
}

async function run<V extends "cancel" | "retry" | "priority">(ctx: CliContext, verb: V, request: Request<V>, command: VideoCommand, json?: boolean): Promise<number> {
  const { result: video } = await ctx.viaDaemon<V, VideoJson>(verb, request, (store) => videoJson(store.execute(request.id, command, { source: "cli" }).video));
  if (json) printJson(video);
  else process.stdout.write(`${video.id}: ${video.state}, lane ${video.lane}\n`);
  return EXIT.ok;
}
