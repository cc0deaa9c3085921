import type { StepOutputs } from "../domain/index.js";
import type { JobMessage } from "../bus/index.js";
import type { TraceSpan } from "../telemetry/types.js";

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

/**
 * `busy`: refused because the video is running an attempt and this message is not a redelivery.
 * It may be a second delivery of the message a live worker holds, so it is left unsettled: that
 * worker settles it, or, if it died, the message comes back after the ack wait as a redelivery.
 */
export type StartOutcome =
  | ({ readonly ok: true; readonly started: StartedJob } & Durable)
  | ({ readonly ok: false; readonly reason: string; readonly busy?: boolean } & Durable);

/** ok:false means the store no longer wants this work (cancelled, superseded...): stop and drop. */
export type ReportOutcome = ({ readonly ok: true } & Durable) | ({ readonly ok: false; readonly reason: string } & Durable);

/**
 * A report may be decided before it is on disk (the daemon's group commit): the worker goes on
 * at once, and `durable` settles when the report is stored (for a refusal: when the state it was
 * refused by is). The job message is acked only after every report of the job is durable; a
 * rejection hands the message back instead. Absent: the report was stored before the call
 * returned (a remote worker's reports).
 */
export interface Durable {
  readonly durable?: Promise<void>;
}

/**
 * How a worker tells the record what happened. In the daemon it writes to SQLite directly; a
 * remote `vqd worker` sends the same reports to the daemon over NATS request/reply. Either way a
 * job message is acked only after its reports are stored. `trace` is the span the report belongs to
 * (its context travels with a remote report; the store's commit span links to it).
 */
export interface JobReporter {
  start(job: JobMessage, worker: string, redelivered: boolean, trace?: TraceSpan): Promise<StartOutcome>;
  stepCompleted(videoId: string, report: { attempt: number; index: number; step: string; outputs: StepOutputs; durationMs: number }, trace?: TraceSpan): Promise<ReportOutcome>;
  failed(videoId: string, report: { attempt: number; index: number; step: string; message: string; retryable: boolean }, trace?: TraceSpan): Promise<ReportOutcome>;
}
