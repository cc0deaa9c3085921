import type { Lane } from "../domain/index.js";

/**
 * Every subject vqd uses, under one configurable prefix (default "vq"), so a profiling run or a
 * second deployment can share a NATS server without seeing the other's messages.
 */
export interface Subjects {
  readonly prefix: string;
  job(lane: Lane): string;
  readonly jobsWildcard: string;
  event(type: string): string;
  readonly eventsWildcard: string;
  api(verb: string): string;
  readonly apiWildcard: string;
  alert(kind: string): string;
  progress(videoId: string): string;
  /** Core-NATS broadcast to every worker node: stop the running job of a video. */
  readonly cancel: string;
}

export function subjects(prefix: string): Subjects {
  return {
    prefix,
    job: (lane) => `${prefix}.jobs.${lane}`,
    jobsWildcard: `${prefix}.jobs.*`,
    event: (type) => `${prefix}.events.${type}`,
    eventsWildcard: `${prefix}.events.>`,
    api: (verb) => `${prefix}.api.${verb}`,
    apiWildcard: `${prefix}.api.*`,
    alert: (kind) => `${prefix}.alerts.${kind}`,
    progress: (videoId) => `${prefix}.progress.${videoId}`,
    cancel: `${prefix}.control.cancel`,
  };
}
