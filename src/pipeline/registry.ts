import type { Step } from "./step.js";
import { noopStep } from "./steps/noop.js";
import { sleepStep } from "./steps/sleep.js";

/** Step kinds by name. The real media steps register here too. */
export class StepRegistry {
  readonly #steps = new Map<string, Step>();

  constructor(steps: readonly Step[] = defaultSteps()) {
    for (const s of steps) this.#steps.set(s.kind, s);
  }

  get(kind: string): Step | undefined {
    return this.#steps.get(kind);
  }

  kinds(): string[] {
    return [...this.#steps.keys()];
  }
}

export function defaultSteps(): Step[] {
  return [noopStep, sleepStep];
}
