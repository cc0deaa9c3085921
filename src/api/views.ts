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
