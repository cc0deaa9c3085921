import { ApiReplyError, type EventJson, type VideoJson } from "../../api/index.js";
import type { CommandHost } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { formatPairs, formatTable, printJson } from "../output.js";
import { eventJson, videoJson } from "../../api/index.js";

export function registerShow({ program, action }: CommandHost): void {
  program
    .command("show")
    .description("show one video: its state and its event timeline")
    .argument("<id>", "video id")
    .option("--json", "print JSON")
    .action(
      action(async (ctx, id: string, opts: { json?: boolean }) => {
        const { result: found } = await ctx.viaDaemon<"show", (VideoJson & { timeline: EventJson[]; progress?: { step: string; percent: number; at: string } | null }) | null>("show", { id }, (store) => {
          const video = store.get(id);
          return video ? { ...videoJson(video), timeline: store.timeline(id).map(eventJson) } : null;
        });
        if (!found) throw new ApiReplyError("show", "not_found", `no video with id ${id}`);
        const { timeline, progress, ...video } = found;
        if (opts.json) {
          printJson(found);
          return EXIT.ok;
        }
        const step = video.steps[video.nextStep];
        process.stdout.write(
          formatPairs([
            ["id", video.id],
            ["state", video.state],
            ["lane", video.lane],
            ["pipeline", `${video.pipeline} (${video.steps.join(" -> ")})`],
            ["path", video.path],
            ["progress", `${video.nextStep}/${video.steps.length} steps${step && video.state !== "completed" ? `, next: ${step}` : ""}`],
            ["running", progress ? `${progress.step} ${progress.percent}%` : null],
            ["attempts", `${video.attempts}/${video.maxAttempts}`],
            ["last error", video.lastError ? `${video.lastError.step}: ${video.lastError.message}` : null],
            ["retry at", video.notBefore],
            ["enqueued", video.enqueuedAt],
            ["finished", video.finishedAt],
          ]) + "\n",
        );
        const outputs = video.outputs;
        if (Object.keys(outputs).length > 0) process.stdout.write(`outputs:\n${JSON.stringify(outputs, null, 2).replace(/^/gm, "  ")}\n`);
        process.stdout.write(
          "\n" +
            formatTable(timeline, [
              { header: "#", value: (e) => e.version, align: "right" },
              { header: "TIME", value: (e) => e.recordedAt },
              { header: "EVENT", value: (e) => e.type },
              { header: "DETAIL", value: describeEvent, max: 100 },
            ]) +
            "\n",
        );
        return EXIT.ok;
      }),
    );
}

/** One line of what an event says, for the timeline. */
export function describeEvent(e: EventJson): string {
  const d = e.data as Record<string, unknown>;
  switch (e.type) {
    case "VideoEnqueued":
      return `lane ${String(d.lane)}, pipeline ${String(d.pipeline)}${e.metadata.source ? `, via ${String(e.metadata.source)}` : ""}`;
    case "AttemptStarted":
      return `attempt ${String(d.attempt)} on ${String(d.worker)}`;
    case "StepCompleted":
      return `${String(d.step)} in ${String(d.durationMs)} ms`;
    case "AttemptFailed": {
      const err = d.error as { step: string; message: string; retryable: boolean };
      return `${err.step}: ${err.message}${err.retryable ? "" : " (not retryable)"}`;
    }
    case "RetryScheduled":
      return `attempt ${String(d.nextAttempt)} after ${String(d.delayMs)} ms`;
    case "VideoCompleted":
      return `after ${String(d.attempts)} attempt(s)`;
    case "VideoDeadLettered":
      return String(d.reason);
    case "VideoCancelled":
      return `${String(d.reason)} (was ${String(d.previousState)})`;
    case "VideoRequeued":
      return `resumes at step ${String(d.resumeAt)}`;
    case "PriorityChanged":
      return `${String(d.from)} -> ${String(d.to)}`;
    default:
      return "";
  }
}
