import type { ConsumerMessages } from "@nats-io/jetstream";
import type { Lane } from "../domain/index.js";
import { decodeJob, wrapMessage, type JetStreamJobQueue, type ReceivedJob } from "./jetstream-job-queue.js";
import { silentLogger, type BusLogger } from "./logger.js";

export interface PullerOptions {
  /** Lanes this node serves, highest priority first. */
  readonly lanes: readonly Lane[];
  /** Messages held per lane before a worker takes them (small: held messages are unavailable to other nodes). */
  readonly prefetch: number;
  /** How often held-but-not-started messages are marked in progress, below the ack wait. */
  readonly heartbeatMs: number;
  /** Long-poll length of one pull request. */
  readonly expiresMs?: number;
  readonly logger?: BusLogger;
}

/**
 * Strict priority between lanes, FIFO within a lane. JetStream has no per-message priority, so
 * each lane has its own consumer; this keeps one long-poll pull open per lane and hands a worker
 * the oldest message of the highest lane that has one. Idle, it waits on the pulls: no timers.
 */
export class PriorityPuller {
  readonly #queue: JetStreamJobQueue;
  readonly #opts: PullerOptions;
  readonly #log: BusLogger;
  readonly #buffers = new Map<Lane, ReceivedJob[]>();
  readonly #roomWaiters = new Map<Lane, () => void>();
  readonly #takers: ((job: ReceivedJob | null) => void)[] = [];
  readonly #fetches = new Set<ConsumerMessages>();
  readonly #loops: Promise<void>[] = [];
  #heartbeat: NodeJS.Timeout | undefined;
  #stopped = false;
  #started = false;

  constructor(queue: JetStreamJobQueue, options: PullerOptions) {
    this.#queue = queue;
    this.#opts = options;
    this.#log = options.logger ?? silentLogger;
    for (const lane of options.lanes) this.#buffers.set(lane, []);
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const lane of this.#opts.lanes) this.#loops.push(this.#pullLoop(lane));
  }

  /** Resolves with the next job by priority, or null once the puller is stopped. */
  take(): Promise<ReceivedJob | null> {
    if (this.#stopped) return Promise.resolve(null);
    const job = this.#shift();
    if (job) return Promise.resolve(job);
    return new Promise((resolve) => this.#takers.push(resolve));
  }

  /** Messages held locally, per lane (for status). */
  held(): Record<string, number> {
    return Object.fromEntries([...this.#buffers].map(([lane, b]) => [lane, b.length]));
  }

  /** Stops pulling, hands held messages back to the server (nak), releases waiting takers. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const f of this.#fetches) f.stop();
    for (const wake of this.#roomWaiters.values()) wake();
    for (const t of this.#takers.splice(0)) t(null);
    for (const b of this.#buffers.values()) for (const job of b.splice(0)) job.nak();
    this.#syncHeartbeat();
    await Promise.allSettled(this.#loops);
  }

  #shift(): ReceivedJob | undefined {
    for (const lane of this.#opts.lanes) {
      const b = this.#buffers.get(lane);
      if (b && b.length > 0) {
        const job = b.shift();
        this.#roomWaiters.get(lane)?.();
        this.#syncHeartbeat();
        return job;
      }
    }
    return undefined;
  }

  #deliver(lane: Lane, job: ReceivedJob): void {
    if (this.#stopped) {
      job.nak();
      return;
    }
    const taker = this.#takers.shift();
    if (taker) {
      taker(job);
      return;
    }
    this.#buffers.get(lane)?.push(job);
    this.#syncHeartbeat();
  }

  #waitForRoom(lane: Lane): Promise<void> {
    return new Promise((resolve) =>
      this.#roomWaiters.set(lane, () => {
        this.#roomWaiters.delete(lane);
        resolve();
      }),
    );
  }

  async #pullLoop(lane: Lane): Promise<void> {
    let backoff = 100;
    while (!this.#stopped) {
      const room = this.#opts.prefetch - (this.#buffers.get(lane)?.length ?? 0);
      if (room <= 0) {
        await this.#waitForRoom(lane);
        continue;
      }
      let fetch: ConsumerMessages | undefined;
      try {
        const consumer = await this.#queue.consumer(lane);
        fetch = await consumer.fetch({ max_messages: room, expires: this.#opts.expiresMs ?? 30_000 });
        this.#fetches.add(fetch);
        for await (const m of fetch) {
          const job = decodeJob(m.data);
          if (!job) {
            this.#log.warn({ lane, seq: m.seq, subject: m.subject }, "dropping a message that is not a vqd job");
            m.term();
            continue;
          }
          this.#deliver(lane, wrapMessage(m, job));
        }
        backoff = 100;
      } catch (err) {
        if (this.#stopped) break;
        this.#log.warn({ lane, err: (err as Error).message, retryInMs: backoff }, "pull from lane failed; retrying");
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      } finally {
        if (fetch) this.#fetches.delete(fetch);
      }
    }
  }

  /** A heartbeat timer runs only while messages are held, so an idle node has none. */
  #syncHeartbeat(): void {
    const holding = !this.#stopped && [...this.#buffers.values()].some((b) => b.length > 0);
    if (holding && !this.#heartbeat) {
      this.#heartbeat = setInterval(() => {
        for (const b of this.#buffers.values()) for (const job of b) job.working();
      }, this.#opts.heartbeatMs);
      this.#heartbeat.unref();
    } else if (!holding && this.#heartbeat) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = undefined;
    }
  }
}
