import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type Consumer,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
} from "@nats-io/jetstream";
import { headers, nanos, type NatsConnection } from "@nats-io/transport-node";
import { isLane, LANES, type Lane } from "../domain/index.js";
import { AckedPublisher } from "./acked-publisher.js";
import type { Subjects } from "./subjects.js";

/** How long a job publish waits for JetStream's acknowledgement (nats.js's own default). */
const PUBLISH_TIMEOUT_MS = 5000;

/** What a job message says: which video, and which dispatch of it. The store decides the rest. */
export interface JobMessage {
  readonly videoId: string;
  readonly dispatch: number;
  readonly lane: Lane;
  /** The reconciler's copy of a message NATS lost: it may take over a running video. */
  readonly recovery?: boolean;
}

export interface JobToPublish {
  readonly msgId: string;
  readonly job: JobMessage;
  /** W3C trace context to carry across the hop (set by telemetry). */
  readonly headers?: Readonly<Record<string, string>>;
}

export type PublishOutcome =
  | { readonly ok: true; readonly msgId: string; readonly seq: number; readonly duplicate: boolean }
  | { readonly ok: false; readonly msgId: string; readonly error: Error };

/** A job message pulled from a lane; settle it exactly once with ack() or nak(). */
export interface ReceivedJob {
  readonly job: JobMessage;
  readonly seq: number;
  readonly deliveryCount: number;
  readonly headers: Readonly<Record<string, string>>;
  ack(): void;
  nak(delayMs?: number): void;
  /** Tells the server the job is still being worked on (resets its ack wait). */
  working(): void;
}

export interface JobQueueOptions {
  readonly subjects: Subjects;
  readonly stream: string;
  readonly ackWaitMs: number;
  /** 0 = unlimited. */
  readonly maxDeliver: number;
  readonly duplicateWindowMs: number;
}

export interface StreamView {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly created: string;
  readonly deleted: ReadonlySet<number>;
  readonly messagesByLane: Readonly<Record<Lane, number>>;
}

/** The VQ_JOBS work-queue stream: one subject and one durable pull consumer per lane. */
export class JetStreamJobQueue {
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #options: JobQueueOptions;
  #jsm?: JetStreamManager;
  #ensuring?: Promise<void>;
  readonly #consumers = new Map<Lane, Consumer>();
  readonly #recreated = new Set<() => void>();
  readonly #publisher: AckedPublisher;

  constructor(nc: NatsConnection, options: JobQueueOptions) {
    this.#nc = nc;
    this.#js = jetstream(nc);
    this.#publisher = new AckedPublisher(nc);
    this.#options = Object.freeze({ ...options });
  }

  get streamName(): string {
    return this.#options.stream;
  }

  consumerName(lane: Lane): string {
    return `${this.#options.stream}_${lane}`;
  }

  async #manager(): Promise<JetStreamManager> {
    this.#jsm ??= await jetstreamManager(this.#nc);
    return this.#jsm;
  }

  /**
   * Creates or updates the stream and the three lane consumers. Safe to call on every start and
   * from several processes at once (concurrent calls in one process share one pass), and again
   * whenever the stream turns out to be missing (a wiped nats-server store). Uses only what
   * nats-server 2.9 offers (one filter per consumer).
   */
  ensure(): Promise<void> {
    this.#ensuring ??= this.#ensure().finally(() => {
      this.#ensuring = undefined;
    });
    return this.#ensuring;
  }

  /**
   * Calls fn each time ensure() had to create the stream or a consumer. A pull request sent while
   * its consumer was missing is never answered, not even once the consumer exists again: pullers
   * restart theirs. Returns the unsubscribe function.
   */
  onRecreated(fn: () => void): () => void {
    this.#recreated.add(fn);
    return () => this.#recreated.delete(fn);
  }

  async #ensure(): Promise<void> {
    let created = false;
    const jsm = await this.#manager();
    const { stream, subjects } = this.#options;
    const config: Partial<StreamConfig> = {
      subjects: [subjects.jobsWildcard],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      duplicate_window: nanos(this.#options.duplicateWindowMs),
    };
    try {
      await jsm.streams.info(stream);
      await jsm.streams.update(stream, config);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        await jsm.streams.add({ name: stream, ...config });
        created = true;
      } catch (addErr) {
        // Another process created it between our info and add.
        if (!/already in use|exists/i.test((addErr as Error).message)) throw addErr;
        await jsm.streams.update(stream, config);
      }
    }
    for (const lane of LANES) {
      const durable = this.consumerName(lane);
      const cfg = {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: subjects.job(lane),
        ack_wait: nanos(this.#options.ackWaitMs),
        max_deliver: this.#options.maxDeliver > 0 ? this.#options.maxDeliver : -1,
        max_ack_pending: 10_000,
        max_waiting: 512,
      };
      try {
        await jsm.consumers.info(stream, durable);
        await jsm.consumers.update(stream, durable, {
          ack_wait: cfg.ack_wait,
          max_deliver: cfg.max_deliver,
          max_ack_pending: cfg.max_ack_pending,
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await jsm.consumers.add(stream, cfg);
        created = true;
      }
      this.#consumers.delete(lane);
    }
    if (created) for (const fn of this.#recreated) fn();
  }

  /**
   * Publishes many jobs without waiting for each acknowledgement in turn: the publishes are
   * pipelined on the connection and the acks awaited together (see AckedPublisher). Each job's
   * outcome is reported; a job not acknowledged within the publish timeout fails.
   */
  async publish(jobs: readonly JobToPublish[]): Promise<PublishOutcome[]> {
    const messages = jobs.map((j) => {
      const h = headers();
      h.set("Nats-Msg-Id", j.msgId);
      if (j.headers) for (const k in j.headers) h.set(k, j.headers[k] as string);
      return { subject: this.#options.subjects.job(j.job.lane), payload: encodeJob(j.job), headers: h };
    });
    const acks = await this.#publisher.publish(messages, PUBLISH_TIMEOUT_MS);
    return acks.map((a, i): PublishOutcome => {
      const msgId = (jobs[i] as JobToPublish).msgId;
      return a.ok ? { ok: true, msgId, seq: a.seq, duplicate: a.duplicate } : { ok: false, msgId, error: a.error };
    });
  }

  async consumer(lane: Lane): Promise<Consumer> {
    let c = this.#consumers.get(lane);
    if (!c) {
      c = await this.#js.consumers.get(this.#options.stream, this.consumerName(lane));
      this.#consumers.set(lane, c);
    }
    return c;
  }

  /** Stream bounds and interior deletions: the reconciler's view of which messages NATS holds. */
  async view(): Promise<StreamView> {
    const jsm = await this.#manager();
    const info = await jsm.streams.info(this.#options.stream, { deleted_details: true, subjects_filter: this.#options.subjects.jobsWildcard });
    const byLane = Object.fromEntries(LANES.map((l) => [l, 0])) as Record<Lane, number>;
    for (const [subject, n] of Object.entries(info.state.subjects ?? {})) {
      const lane = subject.slice(subject.lastIndexOf(".") + 1);
      if (isLane(lane)) byLane[lane] = n;
    }
    return {
      firstSeq: info.state.first_seq,
      lastSeq: info.state.last_seq,
      created: info.created,
      deleted: new Set(info.state.deleted ?? []),
      messagesByLane: byLane,
    };
  }

  /** Messages waiting (not yet delivered) and delivered-but-unacked, per lane. */
  async laneCounts(): Promise<Record<Lane, { waiting: number; inFlight: number }>> {
    const jsm = await this.#manager();
    const out = {} as Record<Lane, { waiting: number; inFlight: number }>;
    for (const lane of LANES) {
      const info = await jsm.consumers.info(this.#options.stream, this.consumerName(lane));
      out[lane] = { waiting: info.num_pending, inFlight: info.num_ack_pending };
    }
    return out;
  }
}

/** One of each for every job message (encoding is stateless; decoding here never streams). */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJob(job: JobMessage): Uint8Array {
  const wire: Record<string, unknown> = { id: job.videoId, d: job.dispatch, l: job.lane };
  if (job.recovery) wire.r = 1;
  return encoder.encode(JSON.stringify(wire));
}

/** Parses a job message; null when it is not one of ours (it is then terminated, not retried). */
export function decodeJob(data: Uint8Array): JobMessage | null {
  try {
    const o = JSON.parse(decoder.decode(data)) as { id?: unknown; d?: unknown; l?: unknown; r?: unknown };
    if (typeof o.id !== "string" || typeof o.d !== "number" || !Number.isInteger(o.d) || !isLane(o.l)) return null;
    return o.r === 1 ? { videoId: o.id, dispatch: o.d, lane: o.l, recovery: true } : { videoId: o.id, dispatch: o.d, lane: o.l };
  } catch {
    return null;
  }
}

export function wrapMessage(m: JsMsg, job: JobMessage): ReceivedJob {
  const h: Record<string, string> = {};
  if (m.headers) for (const [k, v] of m.headers) h[k] = v[0] ?? "";
  return {
    job,
    seq: m.seq,
    deliveryCount: m.info.deliveryCount,
    headers: h,
    ack: () => m.ack(),
    nak: (delayMs?: number) => m.nak(delayMs),
    working: () => m.working(),
  };
}

/** The stream or a lane consumer does not exist (any more): ensure() recreates them. */
export const isStreamMissing = (err: unknown): boolean => isNotFound(err);

function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; api_error?: { err_code?: number }; message?: string };
  return /not found/i.test(e?.message ?? "") || e?.api_error?.err_code === 10059 || e?.api_error?.err_code === 10014;
}
