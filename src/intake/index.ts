export { InputError, isInputError, type InputProblem } from "./errors.js";
export { validateVideoPath } from "./validate-path.js";
export { enqueueVideos, pipelineSteps, resolveLane, type EnqueueOutcome, type EnqueueRequest } from "./enqueue.js";
