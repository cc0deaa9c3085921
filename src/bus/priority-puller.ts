import type { ConsumerMessages } from "@nats-io/jetstream";
import type { Lane } from "../domain/index.js";
import { decodeJob, wrapMessage, type JetStreamJobQueue, type ReceivedJob } from "./jetstream-job-queue.js";
import { silentLogger, type BusLogger } from "./logger.js";

export interface PullerOptions {
  /** Lanes this node serves, highest priority first. */
  readonly lanes: readonly Lane[];
  /** Messages held per lane before a worker takes them (small: held messages are unavailable to other nodes). */
  readonly prefetch: number;
  /**
   * While workers take jobs fast, a lane may hold up to this many: about HOLD_WORK_MS of work at
   * the rate they are being taken. Default: prefetch (no adaptation).
   */
  readonly prefetchMax?: number;
  /** How often held-but-not-started messages are marked in progress, below the ack wait. */
  readonly heartbeatMs: number;
  /** Long-poll length of one pull request. */
  readonly expiresMs?: number;
  readonly logger?: BusLogger;
}

/**
 * How long a free worker waits for a higher lane that the server says has messages (they are on
 * their way in the lane's pull) before it takes a lower lane's message instead. Only a stale
 * count waits this long (another node took those messages); normally they arrive in a round trip.
 */
const HOLD_FOR_HIGHER_LANE_MS = 200;

/**
 * Adaptive prefetch: a lane holds about this much work, measured by the rate at which workers
 * take jobs. Slow jobs (a transcode a minute) keep it at `prefetch`; a burst of short jobs
 * raises it towards `prefetchMax`, so that one pull brings many messages instead of a few.
 */
const HOLD_WORK_MS = 100;
/** The take rate is measured over windows of this length. */
const RATE_WINDOW_MS = 250;
/**
 * A pull above `prefetch` is short-lived (1 s is the least nats.js accepts): if the jobs turn
 * slow, a big pull left open would keep delivering (and this node holding) messages that other
 * nodes could run.
 */
const BIG_PULL_EXPIRES_MS = 1000;

/**
 * Strict priority between lanes, FIFO within a lane. JetStream has no per-message priority, so
 * each lane has its own consumer; this keeps one long-poll pull open per lane and hands a worker
 * the oldest message of the highest lane that has one. Idle, it waits on the pulls: no timers.
 *
 * A lane whose local buffer is empty may still have messages on the server (the next pull is in
 * flight, or the first pulls after start have not answered yet). Each delivered message says how
 * many more its consumer holds (`info.pending`), and each lane reads its consumer's count when
 * its loop starts; while a higher lane is known to (or may) have more, a lower lane's message is
 * not handed out, for at most HOLD_FOR_HIGHER_LANE_MS.
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
  /** Messages the server holds for each lane beyond those delivered; absent = not known yet. */
  readonly #serverPending = new Map<Lane, number>();
  #hold: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #offRecreated: (() => void) | undefined;
  #stopped = false;
  #started = false;
  /** Jobs taken since #rateFrom, and the last measured take rate (jobs per ms). */
  #taken = 0;
  #rateFrom = performance.now();
  #rate = 0;

  constructor(queue: JetStreamJobQueue, options: PullerOptions) {
    this.#queue = queue;
    this.#opts = options;
    this.#log = options.logger ?? silentLogger;
    for (const lane of options.lanes) this.#buffers.set(lane, []);
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    // Pulls left waiting on a stream that was recreated would never be answered: pull again.
    this.#offRecreated = this.#queue.onRecreated(() => {
      for (const f of this.#fetches) f.stop();
    });
    for (const lane of this.#opts.lanes) this.#loops.push(this.#pullLoop(lane));
  }

  /** Resolves with the next job by priority, or null once the puller is stopped. */
  take(): Promise<ReceivedJob | null> {
    if (this.#stopped) return Promise.resolve(null);
    const job = this.#shift();
    if (job) return Promise.resolve(job);
    return new Promise((resolve) => this.#takers.push(resolve));
  }

  /** How many messages a lane may hold right now: prefetch, or more while jobs finish fast. */
  get holdLimit(): number {
    return this.#limit();
  }

  /** Messages held locally, per lane (for status). */
  held(): Record<string, number> {
    return Object.fromEntries([...this.#buffers].map(([lane, b]) => [lane, b.length]));
  }

  /** Stops pulling, hands held messages back to the server (nak), releases waiting takers. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#offRecreated?.();
    for (const f of this.#fetches) f.stop();
    for (const wake of this.#roomWaiters.values()) wake();
    for (const t of this.#takers.splice(0)) t(null);
    clearTimeout(this.#hold);
    this.#hold = undefined;
    for (const b of this.#buffers.values()) for (const job of b.splice(0)) job.nak();
    this.#syncHeartbeat();
    await Promise.allSettled(this.#loops);
  }

  #shift(): ReceivedJob | undefined {
    const waitingFor: Lane[] = [];
    for (const lane of this.#opts.lanes) {
      const b = this.#buffers.get(lane);
      if (b && b.length > 0) {
        if (waitingFor.length > 0) {
          this.#holdFor(waitingFor);
          return undefined;
        }
        const job = b.shift();
        this.#taken++;
        this.#roomWaiters.get(lane)?.();
        this.#syncHeartbeat();
        return job;
      }
      if ((this.#serverPending.get(lane) ?? 1) > 0) waitingFor.push(lane);
    }
    return undefined;
  }

  /** A lower lane's message waits for higher lanes that should deliver soon; not for long. */
  #holdFor(lanes: readonly Lane[]): void {
    if (this.#hold) return;
    this.#hold = setTimeout(() => {
      this.#hold = undefined;
      for (const lane of lanes) if ((this.#serverPending.get(lane) ?? 1) > 0) this.#serverPending.set(lane, 0);
      this.#dispatch();
    }, HOLD_FOR_HIGHER_LANE_MS);
  }

  /** Hands buffered messages to waiting workers, by priority. */
  #dispatch(): void {
    while (this.#takers.length > 0) {
      const job = this.#shift();
      if (!job) return;
      (this.#takers.shift() as (job: ReceivedJob | null) => void)(job);
    }
  }

  #learnPending(lane: Lane, pending: number): void {
    this.#serverPending.set(lane, pending);
    if (pending === 0 && this.#hold && ![...this.#serverPending.values()].some((n) => n > 0)) {
      clearTimeout(this.#hold);
      this.#hold = undefined;
    }
  }

  #deliver(lane: Lane, job: ReceivedJob): void {
    if (this.#stopped) {
      job.nak();
      return;
    }
    this.#buffers.get(lane)?.push(job);
    this.#dispatch();
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

  /** How many messages a lane may hold now (see HOLD_WORK_MS). */
  #limit(): number {
    const { prefetch, prefetchMax = prefetch } = this.#opts;
    if (prefetchMax <= prefetch) return prefetch;
    const now = performance.now();
    if (now - this.#rateFrom >= RATE_WINDOW_MS) {
      // Up at once, down by half per window: a pause between bursts does not shrink the hold.
      this.#rate = Math.max(this.#taken / (now - this.#rateFrom), this.#rate / 2);
      this.#taken = 0;
      this.#rateFrom = now;
    }
    return Math.max(prefetch, Math.min(prefetchMax, Math.ceil(this.#rate * HOLD_WORK_MS)));
  }

  async #pullLoop(lane: Lane): Promise<void> {
    let backoff = 100;
    while (!this.#stopped) {
      const limit = this.#limit();
      const room = limit - (this.#buffers.get(lane)?.length ?? 0);
      // Above prefetch, wait until half the lane's hold is free: fewer, bigger pulls.
      if (room <= 0 || (limit > this.#opts.prefetch && room < limit / 2)) {
        await this.#waitForRoom(lane);
        continue;
      }
      const big = room > this.#opts.prefetch;
      let fetch: ConsumerMessages | undefined;
      try {
        const consumer = await this.#queue.consumer(lane);
        if (!this.#serverPending.has(lane)) {
          this.#learnPending(lane, (await consumer.info()).num_pending);
          this.#dispatch();
        }
        const expires = this.#opts.expiresMs ?? 30_000;
        fetch = await consumer.fetch({ max_messages: room, expires: big ? Math.min(expires, BIG_PULL_EXPIRES_MS) : expires });
        this.#fetches.add(fetch);
        // stop() may have run while this pull was being created: it would wait out its expiry.
        if (this.#stopped) fetch.stop();
        for await (const m of fetch) {
          this.#learnPending(lane, m.info.pending);
          const job = decodeJob(m.data);
          if (!job) {
            this.#log.warn({ lane, seq: m.seq, subject: m.subject }, "dropping a message that is not a vqd job");
            m.term();
            this.#dispatch();
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
