import { isStreamMissing, type JetStreamJobQueue, type StreamView } from "../bus/index.js";
import type { Logger } from "../shared/logger.js";
import { recoveryMessageId, type InFlightVideo, type VideoStore } from "../store/index.js";

export interface ReconcilerOptions {
  readonly intervalMs: number;
  readonly logger: Logger;
  /** Videos a worker of this process is running right now: their message is held, not lost. */
  readonly runningHere: () => ReadonlySet<string>;
  /** Called when rows were added, so the relay publishes them at once. */
  readonly onRepublish: () => void;
}

export interface ReconcileResult {
  readonly checked: number;
  readonly republished: string[];
}

/**
 * SQLite is the record, NATS is transport (invariant 1). nats-server 2.9 acknowledges a publish
 * before it reaches disk, so a message can vanish in a crash, and a wiped store loses them all.
 * On start and then periodically this compares what the store says should be in flight with
 * what the stream holds, and queues a fresh message for every job that is missing.
 */
export class Reconciler {
  readonly #store: VideoStore;
  readonly #queue: JetStreamJobQueue;
  readonly #o: ReconcilerOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<ReconcileResult> | undefined;

  constructor(store: VideoStore, queue: JetStreamJobQueue, options: ReconcilerOptions) {
    this.#store = store;
    this.#queue = queue;
    this.#o = options;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.reconcile().catch((err: Error) => this.#o.logger.warn({ err: err.message }, "reconcile failed; will try again"));
    }, this.#o.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  /** One pass; concurrent calls share it. */
  reconcile(): Promise<ReconcileResult> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** A pass that starts from now: waits out one already running (it may predate a reconnect). */
  async reconcileAfterCurrent(): Promise<ReconcileResult> {
    await this.#running?.catch(() => undefined);
    return this.reconcile();
  }

  async #pass(): Promise<ReconcileResult> {
    const videos = await this.#store.inFlight();
    if (videos.length === 0) return { checked: 0, republished: [] };
    const view = await this.#view();
    const here = this.#o.runningHere();
    const republished: string[] = [];
    for (const v of videos) {
      if (!isLost(v, view, here)) continue;
      this.#store.republish(v.videoId, v.dispatch, v.lane, recoveryMessageId(v.videoId, v.dispatch));
      republished.push(v.videoId);
    }
    if (republished.length > 0) {
      this.#o.logger.warn({ count: republished.length, sample: republished.slice(0, 5) }, "jobs missing from NATS; republished from the store");
      this.#o.onRepublish();
    }
    return { checked: videos.length, republished };
  }

  /** The stream's state; a stream that is gone (wiped nats-server store) is recreated first. */
  async #view(): Promise<StreamView> {
    try {
      return await this.#queue.view();
    } catch (err) {
      if (!isStreamMissing(err)) throw err;
      this.#o.logger.warn({ stream: this.#queue.streamName }, "job stream missing from NATS; recreating it");
      await this.#queue.ensure();
      // Its `created` is now newer than every row's sent_at: every in-flight job is republished.
      return await this.#queue.view();
    }
  }
}

/** True when the store says the job should have a message but the stream no longer holds it. */
export function isLost(v: InFlightVideo, view: StreamView, runningHere: ReadonlySet<string>): boolean {
  if (runningHere.has(v.videoId)) return false;
  const o = v.outbox;
  // A waiting video with no outbox row for its dispatch has nothing that would ever publish it.
  if (o === null) return v.state !== "running";
  // Not sent yet (a retry waiting for its backoff) or superseded: the relay owns it.
  if (o.superseded || o.sentAt === null || o.streamSeq === null) return false;
  const seq = o.streamSeq;
  if (Date.parse(view.created) > Date.parse(o.sentAt)) return true; // the stream was recreated since
  if (seq < view.firstSeq || seq > view.lastSeq) return true;
  return view.deleted.has(seq);
}
