/** Public API of the NATS bus layer. */
export {
  EXIT_NOPERM,
  EXIT_UNAVAILABLE,
  NatsAuthError,
  NatsServerNotFoundError,
  NatsServerStartError,
  NatsUnavailableError,
  isNatsAuthError,
  isNatsServerNotFound,
  isNatsServerStartError,
  isNatsUnavailable,
} from "./errors.js";
export { connectNats, natsStats } from "./connection.js";
export type { ConnectNatsOptions, NatsStats, NatsTlsOptions } from "./connection.js";
export { EmbeddedNatsServer, readEmbeddedRuntime } from "./embedded-server.js";
export type {
  EmbeddedExitInfo,
  EmbeddedNatsServerOptions,
  EmbeddedRestartInfo,
  EmbeddedRuntimeInfo,
} from "./embedded-server.js";
export { silentLogger } from "./logger.js";
export type { BusLogger } from "./logger.js";
export { subjects, type Subjects } from "./subjects.js";
export {
  JetStreamJobQueue,
  decodeJob,
  encodeJob,
  isStreamMissing,
  type JobMessage,
  type JobQueueOptions,
  type JobToPublish,
  type PublishOutcome,
  type ReceivedJob,
  type StreamView,
} from "./jetstream-job-queue.js";
export { PriorityPuller, type PullerOptions } from "./priority-puller.js";
export { NatsEventBus, type PublishedEvent } from "./event-bus.js";
