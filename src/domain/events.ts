import type { Lane } from "./lanes.js";

/** What a step left behind: file paths, probe results, checksums... JSON-serialisable. */
export type StepOutputs = Record<string, unknown>;

export interface FailureInfo {
  readonly step: string;
  readonly index: number;
  readonly message: string;
  readonly retryable: boolean;
}

export interface VideoEnqueued {
  readonly type: "VideoEnqueued";
  readonly data: {
    readonly path: string;
    readonly pipeline: string;
    readonly steps: readonly string[];
    readonly lane: Lane;
    readonly maxAttempts: number;
    readonly metadata: Readonly<Record<string, string>>;
    readonly at: string;
  };
}

export interface AttemptStarted {
  readonly type: "AttemptStarted";
  readonly data: { readonly attempt: number; readonly dispatch: number; readonly worker: string; readonly at: string };
}

export interface StepCompleted {
  readonly type: "StepCompleted";
  readonly data: {
    readonly attempt: number;
    readonly index: number;
    readonly step: string;
    readonly outputs: StepOutputs;
    readonly durationMs: number;
    readonly at: string;
  };
}

export interface AttemptFailed {
  readonly type: "AttemptFailed";
  readonly data: { readonly attempt: number; readonly error: FailureInfo; readonly at: string };
}

export interface RetryScheduled {
  readonly type: "RetryScheduled";
  readonly data: { readonly nextAttempt: number; readonly delayMs: number; readonly notBefore: string; readonly at: string };
}

export interface VideoCompleted {
  readonly type: "VideoCompleted";
  readonly data: { readonly attempts: number; readonly outputs: Readonly<Record<string, StepOutputs>>; readonly at: string };
}

export interface VideoDeadLettered {
  readonly type: "VideoDeadLettered";
  readonly data: { readonly attempts: number; readonly reason: string; readonly at: string };
}

export interface VideoCancelled {
  readonly type: "VideoCancelled";
  readonly data: { readonly reason: string; readonly previousState: string; readonly at: string };
}

export interface VideoRequeued {
  readonly type: "VideoRequeued";
  readonly data: { readonly previousState: string; readonly resumeAt: number; readonly at: string };
}

export interface PriorityChanged {
  readonly type: "PriorityChanged";
  readonly data: { readonly from: Lane; readonly to: Lane; readonly at: string };
}

/** Every fact the video aggregate can record, named in the past tense. */
export type VideoEvent =
  | VideoEnqueued
  | AttemptStarted
  | StepCompleted
  | AttemptFailed
  | RetryScheduled
  | VideoCompleted
  | VideoDeadLettered
  | VideoCancelled
  | VideoRequeued
  | PriorityChanged;

export type VideoEventType = VideoEvent["type"];

export const VIDEO_EVENT_TYPES: readonly VideoEventType[] = [
  "VideoEnqueued",
  "AttemptStarted",
  "StepCompleted",
  "AttemptFailed",
  "RetryScheduled",
  "VideoCompleted",
  "VideoDeadLettered",
  "VideoCancelled",
  "VideoRequeued",
  "PriorityChanged",
];

/** Events after which the video waits in a lane for a worker: each one is a new dispatch. */
export const DISPATCHING_EVENTS: ReadonlySet<VideoEventType> = new Set([
  "VideoEnqueued",
  "RetryScheduled",
  "VideoRequeued",
  "PriorityChanged",
]);
