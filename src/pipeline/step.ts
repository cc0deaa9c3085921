import type { StepOutputs } from "../domain/index.js";

/** What a step sees of the video it works on. */
export interface StepInput {
  readonly videoId: string;
  readonly path: string;
  readonly pipeline: string;
  /** Index of this step in the pipeline. */
  readonly index: number;
  /** This step's name in the pipeline (`name ?? step`). */
  readonly name: string;
  /** Outputs of the steps already completed, keyed by step name. */
  readonly previous: Readonly<Record<string, StepOutputs>>;
  /** The step's options from the pipeline config. */
  readonly options: Readonly<Record<string, unknown>>;
  /** Where this video's outputs go (outputDir/<video id>). */
  readonly outputDir: string;
  readonly attempt: number;
}

export interface StepContext {
  /** Aborted on cancel, on shutdown past the deadline, or when the step stalls. */
  readonly signal: AbortSignal;
  /** Percent 0-100; also the liveness signal of long steps. */
  progress(percent: number, detail?: string): void;
}

/** A kind of pipeline step (probe, transcode, noop...). Implementations are stateless. */
export interface Step {
  readonly kind: string;
  /** Checks the step's options at config load; throws a StepError("options") naming the bad one. */
  validateOptions?(options: Readonly<Record<string, unknown>>): void;
  run(input: StepInput, ctx: StepContext): Promise<StepOutputs>;
}
