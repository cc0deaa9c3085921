export type { Step, StepContext, StepInput } from "./step.js";
export { StepError, StepAbortedError, classify, isStepError } from "./errors.js";
export { StepRegistry, defaultSteps } from "./registry.js";
