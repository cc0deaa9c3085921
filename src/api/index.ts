/**
 * The client half of the API: what the CLI and remote workers need. The server half (request
 * validation with zod, the NATS subscription) is `./server.js`, imported only by the daemon so
 * that short CLI commands do not load the schema library.
 */
export { ApiClient, ApiReplyError, DaemonUnavailableError, isApiReplyError, isDaemonUnavailable } from "./client.js";
export type { ErrorCode, Reply, Request, Verb } from "./protocol.js";
export { videoJson, eventJson, enqueueOutcomeJson, type EnqueueResultJson, type VideoJson, type EventJson } from "./views.js";
