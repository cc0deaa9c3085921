import type { BackoffPolicy } from "../domain/index.js";
import { isDuplicateJob, nextStepIndex, outputsOf } from "../domain/index.js";
import type { JobMessage } from "../bus/index.js";
import type { TraceSpan } from "../telemetry/types.js";
import type { JobReporter, ReportOutcome, StartOutcome } from "../workers/index.js";
import type { CommandBatcher } from "./command-batcher.js";

/** Worker reports written to the event store through the group-commit batcher. */
export class StoreReporter implements JobReporter {
  readonly #batcher: CommandBatcher;
  readonly #backoff: BackoffPolicy;
  readonly #random: () => number;

  constructor(batcher: CommandBatcher, backoff: BackoffPolicy, random: () => number = Math.random) {
    this.#batcher = batcher;
    this.#backoff = backoff;
    this.#random = random;
  }

  async start(job: JobMessage, worker: string, redelivered: boolean, trace?: TraceSpan): Promise<StartOutcome> {
    const r = await this.#batcher.submit({
      videoId: job.videoId,
      command: { type: "StartAttempt", dispatch: job.dispatch, worker, redelivered },
      metadata: { source: "worker" },
      trace: trace?.traceparent(),
    });
    if (!r.ok) return { ok: false, reason: r.error.message, busy: isDuplicateJob(r.error) };
    const v = r.video;
    return {
      ok: true,
      started: { attempt: v.attempts, path: v.path, pipeline: v.pipeline, steps: v.steps, nextStep: nextStepIndex(v), previous: outputsOf(v) },
    };
  }

  async stepCompleted(
    videoId: string,
    report: { attempt: number; index: number; step: string; outputs: Record<string, unknown>; durationMs: number },
    trace?: TraceSpan,
  ): Promise<ReportOutcome> {
    const r = await this.#batcher.submit({ videoId, command: { type: "CompleteStep", ...report }, metadata: { source: "worker" }, trace: trace?.traceparent() });
    return r.ok ? { ok: true } : { ok: false, reason: r.error.message };
  }

  async failed(videoId: string, report: { attempt: number; index: number; step: string; message: string; retryable: boolean }, trace?: TraceSpan): Promise<ReportOutcome> {
    const r = await this.#batcher.submit({
      videoId,
      command: { type: "FailAttempt", ...report, backoff: this.#backoff, random: this.#random() },
      metadata: { source: "worker" },
      trace: trace?.traceparent(),
    });
    return r.ok ? { ok: true } : { ok: false, reason: r.error.message };
  }
}
