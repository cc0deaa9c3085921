import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Subscription } from "@nats-io/transport-node";
import { ApiServer } from "../api/server.js";
import { JetStreamJobQueue, NatsEventBus, natsStats, PriorityPuller, subjects, type Subjects } from "../bus/index.js";
import type { Config } from "../config/index.js";
import { DISPATCHING_EVENTS, type VideoEventType } from "../domain/index.js";
import { enqueueVideos, InboxWatcher, KnownFiles } from "../intake/index.js";
import { profileCompletedPayload, Scheduler } from "../scheduler/index.js";
import { configureSpawner, StepRegistry } from "../pipeline/index.js";
import type { Logger } from "../shared/logger.js";
import { openDatabase, VideoStore, type BatchItemResult, type Database } from "../store/index.js";
import { memoryGrowth, noopTelemetry, QueueDepthMonitor, takeMemorySnapshot, type MemorySnapshot, type Telemetry } from "../telemetry/index.js";
import { waitingByLane } from "../telemetry/depth-alert.js";
import { parseTick, ProgressBoard, ProgressPublisher, WorkerPool } from "../workers/index.js";
import { apiHandlers, classifyApiError } from "./api-handlers.js";
import { CommandBatcher } from "./command-batcher.js";
import { jobQueueOptions, pullerOptions, startNats, type NatsHandle } from "./nats-setup.js";
import { OutboxRelay } from "./outbox-relay.js";
import { Reconciler } from "./reconciler.js";
import { StoreReporter } from "./store-reporter.js";

export interface DaemonOptions {
  readonly config: Config;
  readonly logger: Logger;
  /** Step kinds the workers can run (default: the built-in ones). */
  readonly steps?: StepRegistry;
  /** Run no workers in this process (the store, relay and API only). */
  readonly workers?: boolean;
  /** Made once at startup (setupTelemetry); the daemon shuts it down when it stops. Default: none. */
  readonly telemetry?: Telemetry;
}

/**
 * The long-running process: the record (SQLite), the transport (NATS), and what moves work
 * between them. Start order follows the data: store, NATS, stream, relay, reconciler, API, workers.
 */
export class Daemon {
  readonly config: Config;
  readonly store: VideoStore;
  readonly pool: WorkerPool | null;
  readonly subjects: Subjects;
  readonly startedAt = new Date();
  readonly #log: Logger;
  readonly #db: Database;
  readonly #nats: NatsHandle;
  readonly #queue: JetStreamJobQueue;
  readonly #relay: OutboxRelay;
  readonly #reconciler: Reconciler;
  readonly #api: ApiServer;
  readonly #events: NatsEventBus;
  readonly #tel: Telemetry;
  readonly #depth: QueueDepthMonitor | null;
  readonly #inbox: InboxWatcher;
  readonly #scheduler: Scheduler;
  readonly #batcher: CommandBatcher;
  #cancelSub?: Subscription;
  #progressSub?: Subscription;
  /** Latest progress tick of every running video, from this node's workers and remote ones. */
  readonly progress = new ProgressBoard();
  #stopping?: Promise<void>;

  private constructor(parts: {
    config: Config;
    log: Logger;
    db: Database;
    store: VideoStore;
    nats: NatsHandle;
    queue: JetStreamJobQueue;
    steps: StepRegistry;
    workers: boolean;
    telemetry: Telemetry;
  }) {
    const { config, log, store, nats, queue } = parts;
    const tel = parts.telemetry;
    this.#tel = tel;
    this.config = config;
    this.#log = log;
    this.#db = parts.db;
    this.store = store;
    this.#nats = nats;
    this.#queue = queue;
    this.subjects = subjects(config.nats.subjectPrefix);
    this.#events = new NatsEventBus(nats.nc, this.subjects);
    const batcher = new CommandBatcher(store, (results) => this.#afterCommit(results), tel);
    this.#batcher = batcher;
    this.#inbox = new InboxWatcher({
      config,
      enqueue: (paths, o) => enqueueVideos(batcher, config, { paths, lane: o.lane, pipeline: o.pipeline, metadata: o.metadata, source: "inbox" }),
      knownFiles: new KnownFiles(parts.db),
      logger: log.child({ component: "inbox" }),
    });
    const reporter = new StoreReporter(batcher, config.workers.backoff);
    const ticks = new ProgressPublisher(nats.nc, this.subjects);
    this.#relay = new OutboxRelay(store, queue, {
      batchSize: 1000,
      pollMs: config.nats.outboxPollMs,
      logger: log.child({ component: "relay" }),
      telemetry: tel,
      subject: (lane) => this.subjects.job(lane),
      onPublished: (count, lagMs) => tel.outboxPublished(count, lagMs),
    });
    if (parts.workers) configureSpawner({ helper: config.workers.spawnHelper, log: log.child({ component: "spawner" }) });
    this.pool = parts.workers
      ? new WorkerPool({
          count: config.workers.count,
          puller: new PriorityPuller(queue, pullerOptions(config, undefined, log.child({ component: "puller" }))),
          reporter,
          steps: parts.steps,
          pipeline: (name) => config.pipelines[name]?.steps,
          outputDir: config.outputDir,
          heartbeatMs: config.workers.heartbeatMs,
          logger: log.child({ component: "worker" }),
          onProgress: (videoId, step, percent, detail) => ticks.publish(videoId, step, percent, detail),
          onJobSettled: (videoId) => ticks.forget(videoId),
          telemetry: tel,
          subject: (lane) => this.subjects.job(lane),
        })
      : null;
    this.#depth =
      tel.mode === "off"
        ? null
        : new QueueDepthMonitor({
            threshold: config.telemetry.queueDepthAlert,
            read: waitingByLane(parts.db),
            publish: (alert) => nats.nc.publish(this.subjects.alert("queue_depth"), new TextEncoder().encode(JSON.stringify(alert))),
            logger: log.child({ component: "alerts" }),
            telemetry: tel,
          });
    tel.observe("vq.nats.reconnects", "Reconnects of the daemon's NATS connection", "{reconnect}", (record) => record(natsStats(nats.nc).reconnects), true);
    this.#reconciler = new Reconciler(store, queue, {
      intervalMs: config.nats.reconcileIntervalMs,
      logger: log.child({ component: "reconciler" }),
      runningHere: () => new Set(this.pool?.running().map((r) => r.videoId) ?? []),
      onRepublish: () => this.#relay.wake(),
    });
    this.#api = new ApiServer(nats.nc, apiHandlers({ config, store, batcher, reporter, status: () => this.status(), progress: (id) => this.progress.get(id), snapshot: (heap) => this.snapshotMemory({ heap }) }), {
      subjects: this.subjects,
      maxPayloadBytes: config.api.maxPayloadBytes,
      logger: log.child({ component: "api" }),
      classify: classifyApiError,
      telemetry: tel,
    });
    this.#scheduler = new Scheduler({
      config,
      logger: log.child({ component: "scheduler" }),
      memorySnapshot: () => this.snapshotMemory(),
      onResult: (run) => {
        const payload = profileCompletedPayload(run);
        if (payload) this.#nats.nc.publish(this.subjects.event("ProfileCompleted"), new TextEncoder().encode(JSON.stringify(payload)));
      },
    });
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    const { config, logger } = options;
    // Unknown step kinds or bad step options stop the daemon before it touches anything (exit 78).
    (options.steps ?? StepRegistry.fromConfig(config)).validatePipelines(config.pipelines);
    mkdirSync(config.dataDir, { recursive: true });
    const db = await openDatabase({ file: config.database.file, synchronous: config.database.synchronous, busyTimeoutMs: config.database.busyTimeoutMs });
    let nats: NatsHandle | undefined;
    try {
      nats = await startNats(config, logger);
      const queue = new JetStreamJobQueue(nats.nc, jobQueueOptions(config));
      await queue.ensure();
      const steps = options.steps ?? StepRegistry.fromConfig(config);
      const daemon = new Daemon({ config, log: logger, db, store: new VideoStore(db), nats, queue, steps, workers: options.workers ?? true, telemetry: options.telemetry ?? noopTelemetry });
      await daemon.#start();
      return daemon;
    } catch (err) {
      await nats?.close().catch(() => undefined);
      await db.close();
      throw err;
    }
  }

  async #start(): Promise<void> {
    // First: a bad inbox folder is a config error (exit 78) before anything else runs.
    await this.#inbox.start();
    this.#relay.start();
    const first = await this.#reconciler.reconcile();
    if (first.republished.length > 0) this.#log.warn({ count: first.republished.length }, "recovered jobs lost by NATS");
    this.#reconciler.start();
    this.#depth?.check();
    void this.#reconcileOnReconnect();
    this.#api.start();
    this.#cancelSub = this.#nats.nc.subscribe(this.subjects.cancel, {
      callback: (_err, msg) => {
        const videoId = new TextDecoder().decode(msg.data);
        if (this.pool?.cancel(videoId, "cancelled")) this.#log.info({ videoId }, "running job cancelled");
      },
    });
    this.#progressSub = this.#nats.nc.subscribe(this.subjects.progress("*"), {
      callback: (_err, msg) => {
        const tick = parseTick(msg.data);
        if (tick) this.progress.record(tick);
      },
    });
    this.pool?.start();
    await this.#nats.nc.flush();
    this.#log.info(
      { nats: this.#nats.nc.getServer(), embedded: this.#nats.embedded !== null, database: this.config.database.file, workers: this.pool?.size ?? 0 },
      "vqd ready",
    );
    this.#scheduler.start();
  }

  /**
   * A reconnect may follow a nats-server crash (acknowledged messages lost) or a wiped store (the
   * stream gone): compare at once instead of at the next interval. The pass recreates a missing stream.
   */
  async #reconcileOnReconnect(): Promise<void> {
    for await (const s of this.#nats.nc.status()) {
      if (s.type !== "reconnect" || this.#stopping) continue;
      this.#reconciler.reconcileAfterCurrent().catch((err: Error) => this.#log.warn({ err: err.message }, "reconcile after reconnect failed; will try again"));
    }
  }

  /** After a batch commits: tell outside subscribers, wake the relay, stop cancelled jobs. */
  #afterCommit(results: readonly BatchItemResult[]): void {
    let dispatched = false;
    let depthChanged = false;
    this.#tel.committed(results);
    for (const r of results) {
      if (!r.ok) continue;
      for (const e of r.events) {
        const type = e.type as VideoEventType;
        if (DISPATCHING_EVENTS.has(type)) dispatched = true;
        if (type === "VideoCompleted" || type === "VideoDeadLettered") void this.#inbox.onVideoFinished(r.videoId, r.video.state, r.video.path);
        if (type === "AttemptStarted" || type === "VideoCancelled") depthChanged = true;
        if (type !== "AttemptStarted" && type !== "StepCompleted" && type !== "PriorityChanged") this.progress.clear(r.videoId);
        if (type === "VideoCancelled") this.#nats.nc.publish(this.subjects.cancel, new TextEncoder().encode(r.videoId));
        this.#events.publish({ eventId: e.eventId, videoId: e.streamId, type: e.type, version: e.streamVersion, position: e.position, recordedAt: e.recordedAt, data: e.data });
      }
    }
    if (dispatched) this.#relay.wake();
    if (dispatched || depthChanged) this.#depth?.changed();
  }

  async status(): Promise<Record<string, unknown>> {
    const counts = await this.store.counts();
    let nats: Record<string, unknown>;
    try {
      const lanes = await this.#queue.laneCounts();
      nats = { ok: true, server: this.#nats.nc.getServer(), embedded: this.#nats.embedded !== null, reconnects: natsStats(this.#nats.nc).reconnects, lanes };
    } catch (err) {
      nats = { ok: false, error: (err as Error).message };
    }
    let db: Record<string, unknown>;
    try {
      this.#db.raw.prepare("SELECT 1").get();
      db = { ok: true, file: this.config.database.file };
    } catch (err) {
      db = { ok: false, error: (err as Error).message };
    }
    return {
      pid: process.pid,
      uptimeS: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      depth: counts.waitingByLane,
      inFlight: counts.byState.running,
      states: counts.byState,
      total: counts.total,
      workers: {
        size: this.pool?.size ?? 0,
        busy: this.pool?.busy ?? 0,
        running: (this.pool?.running() ?? []).map((r) => ({ ...r, percent: this.progress.get(r.videoId)?.percent ?? null })),
      },
      progress: this.progress.all(),
      nats,
      database: db,
      alerts: { queueDepth: this.#depth?.active ?? false, queueDepthThreshold: this.config.telemetry.queueDepthAlert },
      memory: memoryGrowth(this.#db),
    };
  }

  /**
   * A memory snapshot of this process: stored in `memory_snapshots`, sent as metrics, and with
   * `heap` (default: snapshots.heapSnapshot) a .heapsnapshot file. `vqd snapshot memory` and the
   * weekly schedule (schedules.memorySnapshot) call this.
   */
  snapshotMemory(options: { heap?: boolean | undefined } = {}): Promise<MemorySnapshot> {
    const s = this.config.snapshots;
    return this.#tel.run("vq.snapshot.memory", {}, () =>
      takeMemorySnapshot({
        db: this.#db,
        role: "daemon",
        telemetry: this.#tel,
        retainRows: s.retainRows,
        heapSnapshot: (options.heap ?? s.heapSnapshot) ? { dir: s.heapSnapshotDir || join(this.config.dataDir, "snapshots"), retain: s.heapSnapshotRetain } : null,
      }),
    );
  }

  /** Reconcile now (tests and `vqd doctor`). */
  reconcile() {
    return this.#reconciler.reconcile();
  }

  /** Drains and stops; calling it again returns the same promise. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const log = this.#log;
    const step = async (name: string, fn: () => Promise<unknown> | unknown) => {
      try {
        await fn();
      } catch (err) {
        log.warn({ step: name, err: (err as Error).message }, "shutdown step failed; continuing");
      }
    };
    log.info({ deadlineMs: this.config.workers.shutdownDeadlineMs }, "shutting down: finishing running jobs");
    await step("scheduler", () => this.#scheduler.stop());
    await step("inbox", () => this.#inbox.stop());
    await step("workers", () => this.pool?.close(this.config.workers.shutdownDeadlineMs));
    this.#depth?.stop();
    await step("api", () => this.#api.stop());
    await step("subscriptions", () => {
      this.#cancelSub?.unsubscribe();
      this.#progressSub?.unsubscribe();
    });
    await step("reconciler", () => this.#reconciler.stop());
    // Commit the last group, and give the relay a turn to publish what it woke for.
    await step("commit", () => this.#batcher.flush());
    await new Promise((r) => setImmediate(r));
    await step("relay", () => this.#relay.stop());
    // The relay marks rows sent after their publishes are acknowledged: commit those too.
    await step("commit", () => this.#batcher.flush());
    await step("nats", () => this.#nats.close());
    await step("database", () => this.#db.close());
    // Last: the spans and metrics of the shutdown itself go out too (bounded: a collector that
    // does not answer does not hold the exit up).
    await step("telemetry", () => this.#tel.shutdown(3000));
    log.info({}, "vqd stopped");
  }
}
