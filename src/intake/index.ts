export { InputError, isInputError, type InputProblem } from "./errors.js";
export { PathChecker, sharedPathChecker, validateVideoPath, type PathOutcome } from "./path-checker.js";
export { enqueueVideos, pipelineSteps, resolveLane, type EnqueueOutcome, type EnqueueRequest } from "./enqueue.js";
export {
  InboxWatcher,
  moveWithoutClobbering,
  type InboxEnqueue,
  type InboxEnqueueOptions,
  type InboxEnqueueOutcome,
  type InboxWatcherOptions,
  type InboxWatcherStats,
} from "./inbox.js";
export { KnownFiles, type KnownFile, type NewKnownFile } from "./known-files.js";
export { globToRegExp, isTemporaryName, nameMatcher } from "./inbox-names.js";
