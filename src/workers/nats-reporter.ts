import type { ApiClient } from "../api/index.js";
import { isApiReplyError } from "../api/index.js";
import type { JobMessage } from "../bus/index.js";
import type { TraceSpan } from "../telemetry/types.js";
import type { JobReporter, ReportOutcome, StartedJob, StartOutcome } from "./reporter.js";

/**
 * Reports of a worker-only node (`vqd worker`, no SQLite): each one is a request to the daemon,
 * which stores it and answers. A refusal ("refused"/"not_found") means the store no longer wants
 * the job; "busy" means another worker is running it (the message is left unsettled); any other
 * failure throws, so the job is not acked and comes back later.
 */
export class NatsReporter implements JobReporter {
  readonly #api: ApiClient;

  constructor(api: ApiClient) {
    this.#api = api;
  }

  async start(job: JobMessage, worker: string, redelivered: boolean, trace?: TraceSpan): Promise<StartOutcome> {
    return this.#refusable(async () => {
      const started = await this.#api.call<"report", StartedJob>(
        "report",
        {
          kind: "start",
          videoId: job.videoId,
          dispatch: job.dispatch,
          lane: job.lane,
          worker,
          redelivered,
        },
        undefined,
        trace,
      );
      return { ok: true, started };
    });
  }

  stepCompleted(
    videoId: string,
    report: { attempt: number; index: number; step: string; outputs: Record<string, unknown>; durationMs: number },
    trace?: TraceSpan,
  ): Promise<ReportOutcome> {
    return this.#refusable(async () => {
      await this.#api.call("report", { kind: "step", videoId, ...report }, undefined, trace);
      return { ok: true };
    });
  }

  failed(videoId: string, report: { attempt: number; index: number; step: string; message: string; retryable: boolean }, trace?: TraceSpan): Promise<ReportOutcome> {
    return this.#refusable(async () => {
      await this.#api.call("report", { kind: "fail", videoId, ...report }, undefined, trace);
      return { ok: true };
    });
  }

  async #refusable<T>(fn: () => Promise<T>): Promise<T | { ok: false; reason: string; busy?: boolean }> {
    try {
      return await fn();
    } catch (err) {
      if (isApiReplyError(err) && err.code === "busy") return { ok: false, reason: err.message, busy: true };
      if (isApiReplyError(err) && (err.code === "refused" || err.code === "not_found")) return { ok: false, reason: err.message };
      throw err;
    }
  }
}
