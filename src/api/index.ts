export { ApiServer, ApiError, type Handlers, type ApiServerOptions } from "./server.js";
export { ApiClient, ApiReplyError, DaemonUnavailableError, isApiReplyError, isDaemonUnavailable } from "./client.js";
export { requests, VERBS, describeIssues, type ErrorCode, type Reply, type Request, type Verb } from "./protocol.js";
export { videoJson, eventJson, enqueueOutcomeJson, type EnqueueResultJson, type VideoJson, type EventJson } from "./views.js";
