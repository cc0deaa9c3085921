import type { StepOutputs } from "./events.js";
import type { Lane } from "./lanes.js";

/** Backoff policy for automatic retries; jitter is a fraction (0.2 = +/-20%). */
export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
  readonly jitter: number;
}

export interface EnqueueVideo {
  readonly type: "EnqueueVideo";
  readonly path: string;
  readonly pipeline: string;
  readonly steps: readonly string[];
  readonly lane: Lane;
  readonly maxAttempts: number;
  readonly metadata?: Readonly<Record<string, string>>;
}

/** A worker took the job message of dispatch `dispatch` and begins an attempt. */
export interface StartAttempt {
  readonly type: "StartAttempt";
  readonly dispatch: number;
  readonly worker: string;
  /**
   * True when the message comes again because its last holder never settled it (a worker died),
   * or is the reconciler's copy of a lost one. Only such a message may take over a running video;
   * a plain duplicate of a running job is stale.
   */
  readonly redelivered?: boolean;
}

export interface CompleteStep {
  readonly type: "CompleteStep";
  readonly attempt: number;
  readonly index: number;
  readonly step: string;
  readonly outputs: StepOutputs;
  readonly durationMs: number;
}

export interface FailAttempt {
  readonly type: "FailAttempt";
  readonly attempt: number;
  readonly index: number;
  readonly step: string;
  readonly message: string;
  readonly retryable: boolean;
  readonly backoff: BackoffPolicy;
  /** A number in [0, 1) supplied by the caller so that decide() stays pure. */
  readonly random: number;
}

export interface CancelVideo {
  readonly type: "CancelVideo";
  readonly reason: string;
}

/** Operator redrive of a dead-lettered video: it resumes at the step that failed. */
export interface RetryVideo {
  readonly type: "RetryVideo";
}

export interface ChangePriority {
  readonly type: "ChangePriority";
  readonly lane: Lane;
}

export type VideoCommand =
  | EnqueueVideo
  | StartAttempt
  | CompleteStep
  | FailAttempt
  | CancelVideo
  | RetryVideo
  | ChangePriority;
