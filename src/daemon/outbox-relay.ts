import type { JetStreamJobQueue, JobToPublish } from "../bus/index.js";
import type { Lane } from "../domain/index.js";
import { noopTelemetry, unsampled, type Telemetry, type TraceSpan } from "../telemetry/index.js";
import { isRecoveryMessageId, type VideoStore } from "../store/index.js";
import type { Logger } from "../shared/logger.js";

export interface OutboxRelayOptions {
  readonly batchSize: number;
  /** Safety-net poll for rows written by another process (the CLI with the daemon down). */
  readonly pollMs: number;
  readonly logger: Logger;
  readonly onPublished?: (count: number, lagMs: number) => void;
  /** Each publish is a PRODUCER span (`send <subject>`) in its video's trace, whose context the message carries. */
  readonly telemetry?: Telemetry;
  /** The subject of a lane (span names); default `vq.jobs.<lane>`. */
  readonly subject?: (lane: Lane) => string;
}

/**
 * Moves job rows from the SQLite outbox to JetStream. A row is marked sent only after its publish
 * is acknowledged; a crash in between publishes it again under the same Nats-Msg-Id, which the
 * stream drops as a duplicate. Sleeps until woken, until the next delayed retry is due, or pollMs.
 */
export class OutboxRelay {
  readonly #store: VideoStore;
  readonly #queue: JetStreamJobQueue;
  readonly #o: OutboxRelayOptions;
  #running = false;
  #wake: (() => void) | undefined;
  #woken = false;
  #loop?: Promise<void>;

  constructor(store: VideoStore, queue: JetStreamJobQueue, options: OutboxRelayOptions) {
    this.#store = store;
    this.#queue = queue;
    this.#o = options;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** New rows may be there: look now. */
  wake(): void {
    this.#woken = true;
    this.#wake?.();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
  }

  /** Publishes everything due now; returns how many rows were sent. Used by the loop and by tests. */
  async drain(): Promise<number> {
    let total = 0;
    let backoff = 100;
    for (;;) {
      const rows = this.#store.pendingOutbox(this.#o.batchSize);
      if (rows.length === 0) return total;
      const tel = this.#o.telemetry ?? noopTelemetry;
      const batch = tel.span("vq.outbox.publish", { attributes: { "vq.messages": rows.length } });
      const spans: (TraceSpan | undefined)[] = [];
      const jobs = rows.map((r): JobToPublish => {
        const job = { videoId: r.videoId, dispatch: r.dispatch, lane: r.lane, ...(isRecoveryMessageId(r.msgId) ? { recovery: true } : {}) };
        const span = tel.mode === "export" ? this.#sendSpan(tel, r.lane, r.msgId, r.videoId, r.traceparent) : undefined;
        spans.push(span);
        const traceparent = span?.traceparent();
        return traceparent ? { msgId: r.msgId, job, headers: { traceparent } } : { msgId: r.msgId, job };
      });
      const outcomes = await this.#queue.publish(jobs);
      outcomes.forEach((o, i) => {
        const span = spans[i];
        if (!span) return;
        if (!o.ok) span.fail(o.error);
        span.end();
      });
      batch.end();
      const sent: { id: number; seq: number }[] = [];
      let firstError: Error | undefined;
      outcomes.forEach((o, i) => {
        const row = rows[i] as (typeof rows)[number];
        if (o.ok) sent.push({ id: row.id, seq: o.seq });
        else {
          firstError ??= o.error;
          this.#store.markOutboxFailed(row.id, o.error.message);
        }
      });
      this.#store.markOutboxSent(sent);
      total += sent.length;
      if (sent.length > 0) this.#o.onPublished?.(sent.length, Date.now() - Math.min(...rows.map((r) => r.availableAt)));
      if (firstError) {
        this.#o.logger.warn({ failed: rows.length - sent.length, sent: sent.length, retryInMs: backoff, err: firstError.message }, "publishing jobs to NATS failed; will retry");
        if (!this.#running) return total;
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, 5000);
        continue;
      }
      if (rows.length < this.#o.batchSize) return total;
    }
  }

  #sendSpan(tel: Telemetry, lane: Lane, msgId: string, videoId: string, traceparent: string | null): TraceSpan {
    const subject = this.#o.subject?.(lane) ?? `vq.jobs.${lane}`;
    return tel.span(`send ${subject}`, {
      kind: "producer",
      // Past telemetry.tracedJobsPerSecond, the job travels with an unsampled context: no span of
      // it is recorded here or by the worker (metrics still count it).
      parent: tel.admitJob() ? traceparent : unsampled(traceparent),
      slow: false,
      attributes: {
        "messaging.system": "nats",
        "messaging.destination.name": subject,
        "messaging.operation": "publish",
        "messaging.operation.type": "send",
        "messaging.message.id": msgId,
        "vq.video_id": videoId,
      },
    });
  }

  async #run(): Promise<void> {
    while (this.#running) {
      this.#woken = false;
      try {
        await this.drain();
      } catch (err) {
        this.#o.logger.error({ err: (err as Error).message }, "outbox relay failed; retrying");
      }
      if (!this.#running) break;
      if (this.#woken) continue;
      const next = this.#store.nextOutboxAt();
      const wait = next === null ? this.#o.pollMs : Math.max(0, Math.min(this.#o.pollMs, next - Date.now()));
      await this.#sleep(wait);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }
}
