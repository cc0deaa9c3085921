import type { NatsConnection } from "@nats-io/transport-node";
import type { Subjects } from "../bus/index.js";

/** A progress tick as it travels on `<prefix>.progress.<videoId>` (core NATS, not the event log). */
export interface ProgressTick {
  readonly videoId: string;
  readonly step: string;
  readonly percent: number;
  readonly detail?: string;
  readonly at: string;
}

/**
 * Publishes progress ticks, at most one per video every `intervalMs` (a transcode reports many
 * times a second), always letting 100% through.
 */
export class ProgressPublisher {
  readonly #nc: NatsConnection;
  readonly #subjects: Subjects;
  readonly #intervalMs: number;
  readonly #last = new Map<string, number>();
  readonly #encoder = new TextEncoder();

  constructor(nc: NatsConnection, subjects: Subjects, intervalMs = 500) {
    this.#nc = nc;
    this.#subjects = subjects;
    this.#intervalMs = intervalMs;
  }

  publish(videoId: string, step: string, percent: number, detail?: string): void {
    const now = Date.now();
    const last = this.#last.get(videoId) ?? 0;
    if (percent < 100 && now - last < this.#intervalMs) return;
    this.#last.set(videoId, now);
    const tick: ProgressTick = { videoId, step, percent: Math.round(percent * 10) / 10, ...(detail ? { detail } : {}), at: new Date(now).toISOString() };
    try {
      this.#nc.publish(this.#subjects.progress(videoId), this.#encoder.encode(JSON.stringify(tick)));
    } catch {
      // Progress is best effort: a closed or reconnecting connection must not fail the step.
    }
  }

  /** Forget a video's throttle state once its job settles. */
  forget(videoId: string): void {
    this.#last.delete(videoId);
  }
}

/** The latest tick per running video, fed by a subscription to every worker node's ticks. */
export class ProgressBoard {
  readonly #latest = new Map<string, ProgressTick>();

  record(tick: ProgressTick): void {
    this.#latest.set(tick.videoId, tick);
  }

  get(videoId: string): ProgressTick | undefined {
    return this.#latest.get(videoId);
  }

  clear(videoId: string): void {
    this.#latest.delete(videoId);
  }

  all(): ProgressTick[] {
    return [...this.#latest.values()];
  }
}

export function parseTick(data: Uint8Array): ProgressTick | null {
  try {
    const t = JSON.parse(new TextDecoder().decode(data)) as Partial<ProgressTick>;
    if (typeof t.videoId !== "string" || typeof t.step !== "string" || typeof t.percent !== "number" || typeof t.at !== "string") return null;
    return t as ProgressTick;
  } catch {
    return null;
  }
}
