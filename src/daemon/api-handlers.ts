import { enqueueOutcomeJson, eventJson, videoJson, type ErrorCode } from "../api/index.js";
import { ApiError, type ApiCall, type Handlers } from "../api/server.js";
import type { Config } from "../config/index.js";
import { isDomainError, isStaleJob, isVideoNotFound, type VideoCommand } from "../domain/index.js";
import { enqueueVideos, isInputError } from "../intake/index.js";
import { isConcurrencyError, type VideoStore } from "../store/index.js";
import type { CommandBatcher } from "./command-batcher.js";
import type { StoreReporter } from "./store-reporter.js";
import type { ProgressTick } from "../workers/index.js";

export interface HandlerDeps {
  readonly config: Config;
  readonly store: VideoStore;
  readonly batcher: CommandBatcher;
  readonly reporter: StoreReporter;
  readonly status: () => Promise<unknown>;
  /** Latest progress tick of a running video (not in the event store). */
  readonly progress: (videoId: string) => ProgressTick | undefined;
  /** Takes a memory snapshot of the daemon (heap: also a .heapsnapshot file; default from the config). */
  readonly snapshot: (heap: boolean | undefined) => Promise<unknown>;
}

/** The daemon's side of each API verb. Writes go through the batcher so their hooks run. */
export function apiHandlers(d: HandlerDeps): Handlers {
  const command = async (videoId: string, cmd: VideoCommand, call: ApiCall) => {
    const r = await d.batcher.submit({ videoId, command: cmd, metadata: { source: "api" }, trace: call.span.traceparent() });
    if (!r.ok) throw r.error;
    return videoJson(r.video);
  };
  return {
    enqueue: async (req, call) => {
      const outcomes = await enqueueVideos(d.batcher, d.config, {
        paths: req.paths,
        lane: req.priority,
        pipeline: req.pipeline,
        metadata: req.metadata,
        cwd: req.cwd ?? "/",
        source: "api",
        traceparent: call.span.traceparent(),
      });
      return outcomes.map(enqueueOutcomeJson);
    },
    status: () => d.status(),
    list: async (req) => (await d.store.list({ state: req.state, lane: req.lane, limit: req.limit, afterId: req.after })).map(videoJson),
    show: (req) => {
      const video = d.store.get(req.id);
      if (!video) throw new ApiError("not_found", `no video with id ${req.id}`);
      const tick = video.state === "running" ? d.progress(req.id) : undefined;
      return { ...videoJson(video), progress: tick ? { step: tick.step, percent: tick.percent, at: tick.at } : null, timeline: d.store.timeline(req.id).map(eventJson) };
    },
    cancel: (req, call) => command(req.id, { type: "CancelVideo", reason: req.reason ?? "cancelled by operator" }, call),
    retry: (req, call) => command(req.id, { type: "RetryVideo" }, call),
    priority: (req, call) => command(req.id, { type: "ChangePriority", lane: req.lane }, call),
    snapshot: (req) => d.snapshot(req.heap),
    report: async (req, call) => {
      if (req.kind === "start") {
        const r = await d.reporter.start({ videoId: req.videoId, dispatch: req.dispatch, lane: req.lane }, req.worker, req.redelivered, call.span);
        // A remote worker acts on the reply as on a stored fact: answer once it is one.
        await r.durable;
        if (!r.ok) throw new ApiError(r.busy ? "busy" : "refused", r.reason);
        return r.started;
      }
      const { kind: _kind, videoId, ...report } = req;
      const r =
        req.kind === "step"
          ? await d.reporter.stepCompleted(videoId, report as Parameters<StoreReporter["stepCompleted"]>[1], call.span)
          : await d.reporter.failed(videoId, report as Parameters<StoreReporter["failed"]>[1], call.span);
      await r.durable;
      if (!r.ok) throw new ApiError("refused", r.reason);
      return { stored: true };
    },
  };
}

export function classifyApiError(err: unknown): ErrorCode | null {
  if (isVideoNotFound(err)) return "not_found";
  if (isInputError(err)) return "bad_request";
  if (isStaleJob(err) || isDomainError(err) || isConcurrencyError(err)) return "refused";
  return null;
}
