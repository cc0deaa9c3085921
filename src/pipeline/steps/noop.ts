import type { Step } from "../step.js";

/** Does nothing: for benchmarks of the queue itself and for tests. */
export const noopStep: Step = {
  kind: "noop",
  run: async () => ({}),
};
