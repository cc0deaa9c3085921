import type { EnqueueOutcome } from "../intake/index.js";
import { currentStep, nextStepIndex, outputsOf, type Video } from "../domain/index.js";
import type { StoredEvent } from "../store/index.js";

/** The stable JSON shape of a video for `--json` output and the API. */
export function videoJson(v: Video) {
  return {
    id: v.id,
    state: v.state,
    lane: v.lane,
    pipeline: v.pipeline,
    path: v.path,
    steps: v.steps,
    currentStep: currentStep(v),
    nextStep: nextStepIndex(v),
    attempts: v.attempts,
    maxAttempts: v.maxAttempts,
    lastError: v.lastError,
    notBefore: v.notBefore,
    outputs: outputsOf(v),
    metadata: v.metadata,
    version: v.version,
    enqueuedAt: v.enqueuedAt,
    updatedAt: v.updatedAt,
    startedAt: v.startedAt,
    finishedAt: v.finishedAt,
  };
}

export function eventJson(e: StoredEvent) {
  return { position: e.position, version: e.streamVersion, type: e.type, recordedAt: e.recordedAt, data: e.data, metadata: e.metadata };
}

/** One line of an enqueue's answer: the id, or why that input was refused. */
export type EnqueueResultJson =
  | { input: string; id: string; path: string; lane: string; pipeline: string }
  | { input: string; error: string; problem: string };

export function enqueueOutcomeJson(o: EnqueueOutcome): EnqueueResultJson {
  return o.ok ? { input: o.input, id: o.id, path: o.path, lane: o.video.lane, pipeline: o.video.pipeline } : { input: o.input, error: o.error, problem: o.problem };
}

export type VideoJson = ReturnType<typeof videoJson>;
export type EventJson = ReturnType<typeof eventJson>;
