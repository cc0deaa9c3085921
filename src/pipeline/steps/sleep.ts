import { StepAbortedError, StepError } from "../errors.js";
import type { Step } from "../step.js";

/**
 * Waits `ms` milliseconds (abortable), reporting progress; `fail: "retryable" | "fatal"` makes it
 * fail afterwards and `failTimes: N` only on the first N attempts. For tests and benchmarks.
 */
export const sleepStep: Step = {
  kind: "sleep",
  validateOptions(options) {
    const ms = options.ms ?? 0;
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) throw new StepError(`sleep: options.ms must be a number >= 0`, { retryable: false });
    if (options.fail !== undefined && options.fail !== "retryable" && options.fail !== "fatal") {
      throw new StepError(`sleep: options.fail must be "retryable" or "fatal"`, { retryable: false });
    }
  },
  async run(input, ctx) {
    const ms = typeof input.options.ms === "number" ? input.options.ms : 0;
    const started = Date.now();
    await new Promise<void>((resolve, reject) => {
      if (ctx.signal.aborted) return reject(new StepAbortedError(String(ctx.signal.reason ?? "aborted")));
      const tick = setInterval(() => ctx.progress(Math.min(99, ((Date.now() - started) / Math.max(ms, 1)) * 100)), Math.max(50, Math.min(1000, ms / 10)));
      const done = setTimeout(() => {
        clearInterval(tick);
        ctx.signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(done);
        clearInterval(tick);
        reject(new StepAbortedError(String(ctx.signal.reason ?? "aborted")));
      };
      ctx.signal.addEventListener("abort", onAbort, { once: true });
    });
    const failTimes = typeof input.options.failTimes === "number" ? input.options.failTimes : Infinity;
    if (input.options.fail && input.attempt <= failTimes) {
      throw new StepError(`sleep: failing as configured (attempt ${input.attempt})`, { retryable: input.options.fail === "retryable" });
    }
    return { sleptMs: Date.now() - started };
  },
};
