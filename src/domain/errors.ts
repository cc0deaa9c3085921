/**
 * Domain errors: the store and the CLI map these to messages and exit codes. None of them
 * carries a NATS or SQLite type, so the domain stays free of I/O.
 */
export class DomainError extends Error {
  readonly videoId: string;
  constructor(videoId: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DomainError";
    this.videoId = videoId;
  }
}

/** The command is not allowed in the video's current state; nothing was recorded. */
export class IllegalTransitionError extends DomainError {
  readonly command: string;
  readonly state: string;
  constructor(videoId: string, command: string, state: string, detail?: string) {
    super(videoId, `cannot ${describe(command)} video ${videoId}: it is ${state}${detail ? ` (${detail})` : ""}`);
    this.name = "IllegalTransitionError";
    this.command = command;
    this.state = state;
  }
}

/** A job message or worker report that the store no longer wants (messages are hints). */
export class StaleJobError extends DomainError {
  constructor(videoId: string, detail: string) {
    super(videoId, `stale job for video ${videoId}: ${detail}`);
    this.name = "StaleJobError";
  }
}

/**
 * A job message for a video that is running an attempt, not flagged as a redelivery. It may be
 * another delivery of the very message a live worker holds (nats-server 2.9 can hand one stream
 * message out twice, once with its delivery count reset to 1): it must not be acked.
 */
export class DuplicateJobError extends StaleJobError {
  constructor(videoId: string, detail: string) {
    super(videoId, detail);
    this.name = "DuplicateJobError";
  }
}

export class VideoNotFoundError extends DomainError {
  constructor(videoId: string) {
    super(videoId, `no video with id ${videoId}`);
    this.name = "VideoNotFoundError";
  }
}

export class VideoExistsError extends DomainError {
  constructor(videoId: string) {
    super(videoId, `a video with id ${videoId} already exists`);
    this.name = "VideoExistsError";
  }
}

export const isIllegalTransition = (e: unknown): e is IllegalTransitionError => e instanceof IllegalTransitionError;
export const isStaleJob = (e: unknown): e is StaleJobError => e instanceof StaleJobError;
export const isDuplicateJob = (e: unknown): e is DuplicateJobError => e instanceof DuplicateJobError;
export const isVideoNotFound = (e: unknown): e is VideoNotFoundError => e instanceof VideoNotFoundError;
export const isDomainError = (e: unknown): e is DomainError => e instanceof DomainError;

function describe(command: string): string {
  const words: Record<string, string> = {
    EnqueueVideo: "enqueue",
    StartAttempt: "start an attempt on",
    CompleteStep: "complete a step of",
    FailAttempt: "fail an attempt of",
    CancelVideo: "cancel",
    RetryVideo: "retry",
    ChangePriority: "change the priority of",
  };
  return words[command] ?? command;
}
