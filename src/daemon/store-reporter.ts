import type { BackoffPolicy } from "../domain/index.js";
import { isDuplicateJob, nextStepIndex, outputsOf } from "../domain/index.js";
import type { JobMessage } from "../bus/index.js";
import type { TraceSpan } from "../telemetry/types.js";
import type { JobReporter, ReportOutcome, StartOutcome } from "../workers/index.js";
import type { CommandBatcher } from "./command-batcher.js";

/**
 * Worker reports written to the event store through the group-commit batcher. Each is decided at
 * once and durable at the end of the turn (`durable`): the worker does not wait for the commit
 * to run the next step or take the next job, only to ack.
 */
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
    const { result: r, durable } = this.#batcher.run({
      videoId: job.videoId,
      command: { type: "StartAttempt", dispatch: job.dispatch, worker, redelivered },
      metadata: { source: "worker" },
      trace: trace?.traceparent(),
    });
    if (!r.ok) return { ok: false, reason: r.error.message, busy: isDuplicateJob(r.error), durable };
    const v = r.video;
    return {
      ok: true,
      started: { attempt: v.attempts, path: v.path, pipeline: v.pipeline, steps: v.steps, nextStep: nextStepIndex(v), previous: outputsOf(v) },
      durable,
    };
  }

  async stepCompleted(
    videoId: string,
    report: { attempt: number; index: number; step: string; outputs: Record<string, unknown>; durationMs: number },
    trace?: TraceSpan,
  ): Promise<ReportOutcome> {
    const { result: r, durable } = this.#batcher.run({ videoId, command: { type: "CompleteStep", ...report }, metadata: { source: "worker" }, trace: trace?.traceparent() });
    return r.ok ? { ok: true, durable } : { ok: false, reason: r.error.message, durable };
  }

  async failed(videoId: string, report: { attempt: number; index: number; step: string; message: string; retryable: boolean }, trace?: TraceSpan): Promise<ReportOutcome> {
    const { result: r, durable } = this.#batcher.run({
      videoId,
      command: { type: "FailAttempt", ...report, backoff: this.#backoff, random: this.#random() },
      metadata: { source: "worker" },
      trace: trace?.traceparent(),
    });
    return r.ok ? { ok: true, durable } : { ok: false, reason: r.error.message, durable };
  }
}
