export { WorkerPool, type PipelineStepConfig, type WorkerLogger, type WorkerPoolOptions } from "./worker-pool.js";
export type { JobReporter, ReportOutcome, StartedJob, StartOutcome } from "./reporter.js";
export { NatsReporter } from "./nats-reporter.js";
export { ProgressBoard, ProgressPublisher, parseTick, type ProgressTick } from "./progress.js";
