import { ConfigError } from "../config/errors.js";
import type { StepsConfig } from "./config.js";
import { isStepError } from "./errors.js";
import type { Step } from "./step.js";
import { createChecksumStep } from "./steps/checksum.js";
import { createExecStep } from "./steps/exec.js";
import { noopStep } from "./steps/noop.js";
import { createProbeStep } from "./steps/probe.js";
import { sleepStep } from "./steps/sleep.js";
import { createThumbnailStep } from "./steps/thumbnail.js";
import { createTranscodeStep } from "./steps/transcode.js";
import { createWebhookStep } from "./steps/webhook.js";

/** What validatePipelines reads of a pipeline (a config's `pipelines` fits). */
export interface PipelineSpec {
  readonly steps: readonly { readonly step: string; readonly name?: string; readonly options: Readonly<Record<string, unknown>> }[];
}

/** Step kinds by name. */
export class StepRegistry {
  readonly #steps = new Map<string, Step>();

  /** With no argument: the built-in steps with built-in defaults (ffmpeg from PATH, built-in profiles, no named webhooks). */
  constructor(steps: readonly Step[] = defaultSteps()) {
    for (const s of steps) this.#steps.set(s.kind, s);
  }

  /** The built-in steps configured from `config` (a whole Config fits). */
  static fromConfig(config: StepsConfig): StepRegistry {
    return new StepRegistry(defaultSteps(config));
  }

  get(kind: string): Step | undefined {
    return this.#steps.get(kind);
  }

  kinds(): string[] {
    return [...this.#steps.keys()];
  }

  /**
   * Checks that every step of every pipeline is a known kind with valid options. Throws a
   * ConfigError (exit code 78) whose key path is `pipelines.<name>.steps.<i>`.
   */
  validatePipelines(pipelines: Readonly<Record<string, PipelineSpec>>, source = "config"): void {
    for (const [name, pipeline] of Object.entries(pipelines)) {
      pipeline.steps.forEach((config, index) => {
        const keyPath = `pipelines.${name}.steps.${index}`;
        const step = this.#steps.get(config.step);
        if (!step) {
          const known = this.kinds().sort().join(", ");
          throw new ConfigError({ keyPath, reason: `unknown step kind "${config.step}" (known kinds: ${known})`, source });
        }
        try {
          step.validateOptions?.(config.options);
        } catch (e) {
          const message = isStepError(e) || e instanceof Error ? e.message : String(e);
          throw new ConfigError({ keyPath, reason: `invalid options for step "${config.name ?? config.step}": ${message}`, source, cause: e });
        }
      });
    }
  }
}

/** Every built-in step kind, configured from `config` (built-in defaults for what it leaves out). */
export function defaultSteps(config: StepsConfig = {}): Step[] {
  return [
    noopStep,
    sleepStep,
    createProbeStep(config),
    createThumbnailStep(config),
    createTranscodeStep(config),
    createChecksumStep(),
    createWebhookStep(config),
    createExecStep(),
  ];
}
