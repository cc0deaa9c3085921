/**
 * A failed step. `retryable` decides between a retry with backoff and dead-lettering: a corrupt
 * file will be corrupt next time too; a killed process or a timeout may not happen again.
 */
export class StepError extends Error {
  readonly retryable: boolean;
  constructor(message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = "StepError";
    this.retryable = options.retryable;
  }
}

/** The step was stopped through its AbortSignal (cancel or shutdown). */
export class StepAbortedError extends StepError {
  constructor(reason: string) {
    super(`aborted: ${reason}`, { retryable: true });
    this.name = "StepAbortedError";
  }
}

export const isStepError = (e: unknown): e is StepError => e instanceof StepError;

/** Unknown errors (bugs, I/O) are retryable: a retry is cheap, a wrongly dead video is not. */
export function classify(err: unknown): { message: string; retryable: boolean } {
  if (isStepError(err)) return { message: err.message, retryable: err.retryable };
  return { message: err instanceof Error ? err.message : String(err), retryable: true };
}
