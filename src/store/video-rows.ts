import type { Insertable, Selectable } from "kysely";
import { currentStep, type Lane, type Video, type VideoState } from "../domain/index.js";
import type { VideosTable } from "./schema.js";

export type VideoRow = Selectable<VideosTable>;

export function videoToRow(v: Video): Insertable<VideosTable> {
  return {
    id: v.id,
    version: v.version,
    state: v.state,
    lane: v.lane,
    pipeline: v.pipeline,
    path: v.path,
    attempts: v.attempts,
    max_attempts: v.maxAttempts,
    dispatch: v.dispatch,
    current_step: currentStep(v),
    steps: JSON.stringify(v.steps),
    completed_steps: JSON.stringify(v.completedSteps),
    last_error: v.lastError ? JSON.stringify(v.lastError) : null,
    metadata: JSON.stringify(v.metadata),
    not_before: v.notBefore,
    enqueued_at: v.enqueuedAt,
    updated_at: v.updatedAt,
    started_at: v.startedAt,
    finished_at: v.finishedAt,
  };
}

export function rowToVideo(r: VideoRow): Video {
  return {
    id: r.id,
    version: r.version,
    state: r.state as VideoState,
    lane: r.lane as Lane,
    pipeline: r.pipeline,
    path: r.path,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    dispatch: r.dispatch,
    steps: JSON.parse(r.steps) as string[],
    completedSteps: JSON.parse(r.completed_steps) as Video["completedSteps"],
    lastError: r.last_error === null ? null : (JSON.parse(r.last_error) as Video["lastError"]),
    metadata: JSON.parse(r.metadata) as Record<string, string>,
    notBefore: r.not_before,
    enqueuedAt: r.enqueued_at,
    updatedAt: r.updated_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}
