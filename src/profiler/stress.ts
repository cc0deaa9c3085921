/**
 * A deterministic mixed database workload through the data layer, the shape of a busy daemon's
 * traffic: 40% enqueues, 30% reads by id, 20% state changes (start an attempt, complete a step,
 * change priority, in turn), 10% lists of 50.
 */
import { LANES, type Lane, type Video } from "../domain/index.js";
import type { VideoStore } from "../store/index.js";

/** xorshift32: the same operations in the same order on every run. */
export function seededRandom(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

const STEPS = ["probe", "thumbnail", "transcode"];

export class MixedWorkload {
  readonly #store: VideoStore;
  readonly #random: () => number;
  readonly #all: string[] = [];
  readonly #queued: string[] = [];
  readonly #running: string[] = [];
  readonly #videos = new Map<string, Video>();
  #next = 0;
  #kind = 0;
  readonly counts = { enqueue: 0, get: 0, start: 0, complete: 0, priority: 0, list: 0 };

  constructor(store: VideoStore, seed = 0x5eed) {
    this.#store = store;
    this.#random = seededRandom(seed);
  }

  /** One operation; a promise only for a list (Kysely's async path). */
  step(): Promise<unknown> | undefined {
    const r = this.#random();
    if (r < 0.4 || this.#all.length === 0) {
      this.#enqueue();
      return undefined;
    }
    if (r < 0.7) {
      this.counts.get++;
      if (!this.#store.get(this.#pick(this.#all))) throw new Error("a stored video could not be read back");
      return undefined;
    }
    if (r < 0.9) {
      this.#command();
      return undefined;
    }
    this.counts.list++;
    return this.#store.list({ limit: 50 });
  }

  #pick(from: readonly string[]): string {
    return from[Math.floor(this.#random() * from.length)] as string;
  }

  #take(from: string[]): string {
    const i = Math.floor(this.#random() * from.length);
    const id = from[i] as string;
    from[i] = from[from.length - 1] as string;
    from.pop();
    return id;
  }

  #track(v: Video): void {
    this.#videos.set(v.id, v);
    if (v.state === "queued" || v.state === "retrying") this.#queued.push(v.id);
    else if (v.state === "running") this.#running.push(v.id);
  }

  #enqueue(): void {
    this.counts.enqueue++;
    const id = `s-${String(this.#next++).padStart(7, "0")}`;
    const r = this.#store.execute(id, {
      type: "EnqueueVideo",
      path: `/srv/videos/incoming/${id}.mp4`,
      pipeline: "default",
      steps: STEPS,
      lane: LANES[this.#next % LANES.length] as Lane,
      maxAttempts: 3,
      metadata: { source: "profile-stress" },
    });
    this.#all.push(id);
    this.#track(r.video);
  }

  #command(): void {
    for (let tries = 0; tries < 3; tries++) {
      const kind = this.#kind++ % 3;
      if (kind === 0 && this.#queued.length > 0) {
        this.counts.start++;
        const id = this.#take(this.#queued);
        const v = this.#videos.get(id) as Video;
        this.#track(this.#store.execute(id, { type: "StartAttempt", dispatch: v.dispatch, worker: "profile-stress" }).video);
        return;
      }
      if (kind === 1 && this.#running.length > 0) {
        this.counts.complete++;
        const id = this.#take(this.#running);
        const v = this.#videos.get(id) as Video;
        const index = v.completedSteps.length;
        const r = this.#store.execute(id, { type: "CompleteStep", attempt: v.attempts, index, step: v.steps[index] as string, outputs: { ok: true, index }, durationMs: 5 });
        this.#track(r.video);
        return;
      }
      if (kind === 2 && this.#queued.length > 0) {
        this.counts.priority++;
        const id = this.#take(this.#queued);
        const v = this.#videos.get(id) as Video;
        const lane = LANES[(LANES.indexOf(v.lane) + 1) % LANES.length] as Lane;
        this.#track(this.#store.execute(id, { type: "ChangePriority", lane }).video);
        return;
      }
    }
    this.counts.get++;
    this.#store.get(this.#pick(this.#all));
  }
}
