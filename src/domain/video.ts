import type { VideoCommand, BackoffPolicy } from "./commands.js";
import { DuplicateJobError, IllegalTransitionError, StaleJobError, VideoExistsError, VideoNotFoundError } from "./errors.js";
import type { FailureInfo, StepOutputs, VideoEvent } from "./events.js";
import { DISPATCHING_EVENTS } from "./events.js";
import type { Lane } from "./lanes.js";

export const VIDEO_STATES = ["queued", "running", "retrying", "completed", "dead", "cancelled"] as const;
export type VideoState = (typeof VIDEO_STATES)[number];

/** States a video never leaves on its own; `dead` can still be redriven by an operator. */
export const TERMINAL_STATES: ReadonlySet<VideoState> = new Set(["completed", "dead", "cancelled"]);

export interface CompletedStep {
  readonly index: number;
  readonly step: string;
  readonly outputs: StepOutputs;
  readonly durationMs: number;
}

/**
 * The video aggregate. It is also the `videos` read model row: the store keeps the result of
 * evolve() so that a command loads one row instead of replaying the stream.
 */
export interface Video {
  readonly id: string;
  /** Stream version: the number of events recorded for this video. */
  readonly version: number;
  readonly state: VideoState;
  readonly path: string;
  readonly pipeline: string;
  readonly steps: readonly string[];
  readonly lane: Lane;
  readonly maxAttempts: number;
  readonly metadata: Readonly<Record<string, string>>;
  /** Attempts started since enqueue or the last operator redrive. */
  readonly attempts: number;
  /** Increments each time the video is (re)sent to a lane; a job message carries it. */
  readonly dispatch: number;
  readonly completedSteps: readonly CompletedStep[];
  readonly lastError: FailureInfo | null;
  readonly notBefore: string | null;
  readonly enqueuedAt: string;
  readonly updatedAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
}

/** Index of the next step to run: completed steps are never rerun. */
export const nextStepIndex = (video: Video): number => video.completedSteps.length;

export const currentStep = (video: Video): string | null =>
  video.state === "running" ? (video.steps[nextStepIndex(video)] ?? null) : null;

export function outputsOf(video: Video): Record<string, StepOutputs> {
  const outputs: Record<string, StepOutputs> = {};
  for (const s of video.completedSteps) outputs[outputKey(video.steps, s.index)] = s.outputs;
  return outputs;
}

/** Outputs are keyed by step name; a step used twice in one pipeline gets `name#index`. */
function outputKey(steps: readonly string[], index: number): string {
  const name = steps[index] ?? `step${index}`;
  return steps.indexOf(name) === steps.lastIndexOf(name) ? name : `${name}#${index}`;
}

/** Exponential backoff with symmetric jitter; `random` in [0, 1). maxMs is a hard ceiling. */
export function backoffDelay(policy: BackoffPolicy, failedAttempts: number, random: number): number {
  const exp = policy.initialMs * Math.pow(policy.multiplier, Math.max(0, failedAttempts - 1));
  const capped = Math.min(policy.maxMs, exp);
  const jittered = capped * (1 + policy.jitter * (2 * random - 1));
  return Math.min(policy.maxMs, Math.max(0, Math.round(jittered)));
}

/**
 * Decides which events a command produces, given the current state (null: no such video).
 * Pure: time and randomness come in as arguments. Throws a DomainError and records nothing
 * when the command is not allowed.
 */
export function decide(videoId: string, video: Video | null, command: VideoCommand, now: Date): VideoEvent[] {
  const at = now.toISOString();
  if (command.type === "EnqueueVideo") {
    if (video) throw new VideoExistsError(videoId);
    if (command.steps.length === 0) throw new IllegalTransitionError(videoId, command.type, "new", "its pipeline has no steps");
    if (!Number.isInteger(command.maxAttempts) || command.maxAttempts < 1) {
      throw new IllegalTransitionError(videoId, command.type, "new", `maxAttempts must be a whole number >= 1, got ${command.maxAttempts}`);
    }
    return [
      {
        type: "VideoEnqueued",
        data: {
          path: command.path,
          pipeline: command.pipeline,
          steps: [...command.steps],
          lane: command.lane,
          maxAttempts: command.maxAttempts,
          metadata: { ...(command.metadata ?? {}) },
          at,
        },
      },
    ];
  }
  if (!video) throw new VideoNotFoundError(videoId);
  const refuse = (detail?: string): never => {
    throw new IllegalTransitionError(videoId, command.type, video.state, detail);
  };

  switch (command.type) {
    case "StartAttempt": {
      if (command.dispatch !== video.dispatch) {
        throw new StaleJobError(videoId, `message is for dispatch ${command.dispatch}, video is at dispatch ${video.dispatch}`);
      }
      // A running video getting its own dispatch again is a redelivery after a worker died.
      if (video.state !== "queued" && video.state !== "retrying" && video.state !== "running") {
        throw new StaleJobError(videoId, `video is ${video.state}`);
      }
      if (video.state === "running" && !command.redelivered) {
        throw new DuplicateJobError(videoId, `video is already running attempt ${video.attempts} (duplicate message)`);
      }
      return [{ type: "AttemptStarted", data: { attempt: video.attempts + 1, dispatch: video.dispatch, worker: command.worker, at } }];
    }
    case "CompleteStep": {
      if (video.state !== "running") refuse();
      if (command.attempt !== video.attempts) {
        throw new StaleJobError(videoId, `report from attempt ${command.attempt}, current attempt is ${video.attempts}`);
      }
      const expected = nextStepIndex(video);
      if (command.index !== expected || video.steps[expected] !== command.step) {
        throw new StaleJobError(videoId, `step ${command.index} (${command.step}) reported, next step is ${expected} (${video.steps[expected] ?? "none"})`);
      }
      const events: VideoEvent[] = [
        {
          type: "StepCompleted",
          data: { attempt: command.attempt, index: command.index, step: command.step, outputs: command.outputs, durationMs: command.durationMs, at },
        },
      ];
      if (command.index === video.steps.length - 1) {
        const outputs = outputsOf({
          ...video,
          completedSteps: [...video.completedSteps, { index: command.index, step: command.step, outputs: command.outputs, durationMs: command.durationMs }],
        });
        events.push({ type: "VideoCompleted", data: { attempts: video.attempts, outputs, at } });
      }
      return events;
    }
    case "FailAttempt": {
      if (video.state !== "running") refuse();
      if (command.attempt !== video.attempts) {
        throw new StaleJobError(videoId, `report from attempt ${command.attempt}, current attempt is ${video.attempts}`);
      }
      if (command.index !== nextStepIndex(video)) {
        throw new StaleJobError(videoId, `failure reported for step ${command.index}, next step is ${nextStepIndex(video)}`);
      }
      const error: FailureInfo = { step: command.step, index: command.index, message: command.message, retryable: command.retryable };
      const failed: VideoEvent = { type: "AttemptFailed", data: { attempt: command.attempt, error, at } };
      if (!command.retryable || video.attempts >= video.maxAttempts) {
        const reason = command.retryable
          ? `gave up after ${video.attempts} attempt(s): ${command.message}`
          : `not retryable: ${command.message}`;
        return [failed, { type: "VideoDeadLettered", data: { attempts: video.attempts, reason, at } }];
      }
      const delayMs = backoffDelay(command.backoff, video.attempts, command.random);
      const notBefore = new Date(now.getTime() + delayMs).toISOString();
      return [failed, { type: "RetryScheduled", data: { nextAttempt: video.attempts + 1, delayMs, notBefore, at } }];
    }
    case "CancelVideo": {
      if (TERMINAL_STATES.has(video.state)) refuse();
      return [{ type: "VideoCancelled", data: { reason: command.reason, previousState: video.state, at } }];
    }
    case "RetryVideo": {
      if (video.state !== "dead") refuse("only dead-lettered videos can be retried");
      return [{ type: "VideoRequeued", data: { previousState: video.state, resumeAt: nextStepIndex(video), at } }];
    }
    case "ChangePriority": {
      if (TERMINAL_STATES.has(video.state)) refuse();
      if (command.lane === video.lane) refuse(`it is already in lane ${command.lane}`);
      return [{ type: "PriorityChanged", data: { from: video.lane, to: command.lane, at } }];
    }
  }
}

/** Applies one recorded event. Pure; `videoId` is only needed for the first event. */
export function evolve(videoId: string, video: Video | null, event: VideoEvent): Video {
  if (event.type === "VideoEnqueued") {
    const d = event.data;
    return {
      id: videoId,
      version: 1,
      state: "queued",
      path: d.path,
      pipeline: d.pipeline,
      steps: d.steps,
      lane: d.lane,
      maxAttempts: d.maxAttempts,
      metadata: d.metadata,
      attempts: 0,
      dispatch: 1,
      completedSteps: [],
      lastError: null,
      notBefore: null,
      enqueuedAt: d.at,
      updatedAt: d.at,
      startedAt: null,
      finishedAt: null,
    };
  }
  if (!video) throw new VideoNotFoundError(videoId);
  const base = {
    ...video,
    version: video.version + 1,
    updatedAt: event.data.at,
    dispatch: DISPATCHING_EVENTS.has(event.type) ? video.dispatch + 1 : video.dispatch,
  };
  switch (event.type) {
    case "AttemptStarted":
      return { ...base, state: "running", attempts: event.data.attempt, notBefore: null, startedAt: video.startedAt ?? event.data.at };
    case "StepCompleted": {
      const { index, step, outputs, durationMs } = event.data;
      return { ...base, completedSteps: [...video.completedSteps, { index, step, outputs, durationMs }] };
    }
    case "AttemptFailed":
      return { ...base, lastError: event.data.error };
    case "RetryScheduled":
      return { ...base, state: "retrying", notBefore: event.data.notBefore };
    case "VideoCompleted":
      return { ...base, state: "completed", finishedAt: event.data.at };
    case "VideoDeadLettered":
      return { ...base, state: "dead", finishedAt: event.data.at };
    case "VideoCancelled":
      return { ...base, state: "cancelled", notBefore: null, finishedAt: event.data.at };
    case "VideoRequeued":
      return { ...base, state: "queued", attempts: 0, notBefore: null, finishedAt: null };
    case "PriorityChanged":
      // A running video keeps its current message; only a waiting one is sent again in its new lane.
      return {
        ...base,
        lane: event.data.to,
        dispatch: video.state === "running" ? video.dispatch : video.dispatch + 1,
      };
  }
}

/** Folds a whole stream; null for an empty one. */
export function replay(videoId: string, events: readonly VideoEvent[]): Video | null {
  let video: Video | null = null;
  for (const e of events) video = evolve(videoId, video, e);
  return video;
}

/** Whether a video waits for a worker (and so should have a job message in its lane). */
export const wantsDispatch = (video: Video): boolean => video.state === "queued" || video.state === "retrying";
