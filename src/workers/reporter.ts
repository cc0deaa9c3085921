import type { StepOutputs } from "../domain/index.js";
import type { JobMessage } from "../bus/index.js";

/** What the store says about a job a worker has just taken. */
export interface StartedJob {
  readonly attempt: number;
  readonly path: string;
  readonly pipeline: string;
  readonly steps: readonly string[];
  /** Completed steps are never rerun: the worker resumes here. */
  readonly nextStep: number;
  readonly previous: Readonly<Record<string, StepOutputs>>;
}

export type StartOutcome = { readonly ok: true; readonly started: StartedJob } | { readonly ok: false; readonly reason: string };

/** ok:false means the store no longer wants this work (cancelled, superseded...): stop and drop. */
export type ReportOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * How a worker tells the record what happened. In the daemon it writes to SQLite directly; a
 * remote `vqd worker` sends the same reports to the daemon over NATS request/reply. Either way a
 * job message is acked only after its report is stored.
 */
export interface JobReporter {
  start(job: JobMessage, worker: string, redelivered: boolean): Promise<StartOutcome>;
  stepCompleted(videoId: string, report: { attempt: number; index: number; step: string; outputs: StepOutputs; durationMs: number }): Promise<ReportOutcome>;
  failed(videoId: string, report: { attempt: number; index: number; step: string; message: string; retryable: boolean }): Promise<ReportOutcome>;
}
