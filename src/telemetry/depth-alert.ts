import { LANES, type Lane } from "../domain/index.js";
import type { Logger } from "../shared/logger.js";
import type { Database } from "../store/index.js";
import type { Telemetry } from "./types.js";

/** What is published on `<prefix>.alerts.queue_depth`. */
export interface QueueDepthAlert {
  readonly kind: "queue_depth";
  readonly state: "raised" | "cleared";
  /** Videos waiting for a worker (queued or waiting for a retry), all lanes. */
  readonly depth: number;
  readonly threshold: number;
  readonly byLane: Readonly<Record<Lane, number>>;
  readonly at: string;
}

export interface QueueDepthMonitorOptions {
  /** The alert is raised when the depth goes above this and cleared when it falls back below it. */
  readonly threshold: number;
  /** Waiting videos per lane, from the store. */
  readonly read: () => Record<Lane, number>;
  readonly publish: (alert: QueueDepthAlert) => void;
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  /** Changes within this long are counted once (default 250 ms). */
  readonly debounceMs?: number;
  /** A metrics collection re-reads the store when the cached figures are older than this (default 30 s). */
  readonly maxAgeMs?: number;
}

/**
 * The share of the event loop depth reads may take: a read that took d ms is followed by no other
 * for d / MAX_READ_SHARE ms. The read counts the waiting rows, so it grows with the queue
 * (~64 ms at 90,000 waiting videos on the 2-core test VM): with only the debounce, a deep and busy
 * queue spent a quarter of the daemon's thread counting itself. Below ~5 ms a read the debounce
 * decides.
 */
const MAX_READ_SHARE = 0.02;

/**
 * Queue depth for metrics and the depth alert. The depth is read from the store after changes
 * (debounced: one indexed query per debounce window however busy the queue is, and spaced
 * further apart when the query is slow, see MAX_READ_SHARE) and cached; a metrics collection
 * reads the cache. Idle, nothing runs: no timer without a change.
 *
 * Hysteresis: raised once when the depth goes above the threshold, then not again until it has
 * been cleared, which happens once when the depth falls below the threshold. A depth equal to
 * the threshold keeps the current state, so a queue hovering at the line does not flap.
 */
export class QueueDepthMonitor {
  readonly #o: QueueDepthMonitorOptions;
  #byLane: Record<Lane, number> = emptyLanes();
  #readAt = 0;
  /** How long the last read took (ms). */
  #readMs = 0;
  #active = false;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: QueueDepthMonitorOptions) {
    this.#o = options;
    const tel = options.telemetry;
    tel.observe("vq.queue.depth", "Videos waiting for a worker (queued or waiting for a retry), by lane", "{video}", (record) => {
      if (Date.now() - this.#readAt > (this.#o.maxAgeMs ?? 30_000)) this.check();
      for (const lane of LANES) record(this.#byLane[lane], { "vq.lane": lane });
    });
    tel.observe("vq.queue.depth_alert", "1 while the queue-depth alert is raised, else 0", "{alert}", (record) => record(this.#active ? 1 : 0));
  }

  /** True while the alert is raised. */
  get active(): boolean {
    return this.#active;
  }

  /** The figures of the last read. */
  get depth(): Readonly<Record<Lane, number>> {
    return this.#byLane;
  }

  /** Something that may change the depth was committed: look again shortly. */
  changed(): void {
    if (this.#timer || this.#stopped) return;
    const spacing = this.#readAt + this.#readMs / MAX_READ_SHARE - Date.now();
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.check();
      },
      Math.max(this.#o.debounceMs ?? 250, spacing),
    );
    this.#timer.unref();
  }

  /** Reads the depth now and raises or clears the alert. */
  check(): void {
    if (this.#stopped) return;
    let byLane: Record<Lane, number>;
    const t0 = performance.now();
    try {
      byLane = this.#o.read();
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message }, "could not read the queue depth");
      return;
    } finally {
      this.#readMs = performance.now() - t0;
    }
    this.#byLane = byLane;
    this.#readAt = Date.now();
    const depth = LANES.reduce((n, l) => n + byLane[l], 0);
    const { threshold } = this.#o;
    if (!this.#active && depth > threshold) {
      this.#active = true;
      this.#o.logger.warn({ alert: "queue_depth", depth, threshold, byLane }, `queue depth ${depth} is above the alert threshold of ${threshold}`);
      this.#emit("raised", depth, byLane);
    } else if (this.#active && depth < threshold) {
      this.#active = false;
      this.#o.logger.info({ alert: "queue_depth", depth, threshold, byLane }, `queue depth ${depth} is back below the alert threshold of ${threshold}`);
      this.#emit("cleared", depth, byLane);
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #emit(state: "raised" | "cleared", depth: number, byLane: Record<Lane, number>): void {
    this.#o.telemetry.alert("queue_depth", state);
    try {
      this.#o.publish({ kind: "queue_depth", state, depth, threshold: this.#o.threshold, byLane: { ...byLane }, at: new Date().toISOString() });
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message }, "could not publish the queue-depth alert");
    }
  }
}

/** Waiting (queued or retrying) videos per lane: one query over the `videos_state` index. */
export function waitingByLane(db: Database): () => Record<Lane, number> {
  // Plain SQL on the raw handle: this module stays importable without loading the store layer.
  const stmt = db.raw.prepare<[], { lane: string; n: number }>("SELECT lane, count(*) AS n FROM videos WHERE state IN ('queued', 'retrying') GROUP BY lane");
  return () => {
    const out = emptyLanes();
    for (const r of stmt.all()) if (r.lane in out) out[r.lane as Lane] = r.n;
    return out;
  };
}

function emptyLanes(): Record<Lane, number> {
  return Object.fromEntries(LANES.map((l) => [l, 0])) as Record<Lane, number>;
}
