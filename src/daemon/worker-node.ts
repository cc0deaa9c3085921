import type { Subscription } from "@nats-io/transport-node";
import { ApiClient } from "../api/index.js";
import { connectNats, JetStreamJobQueue, natsStats, NatsUnavailableError, PriorityPuller } from "../bus/index.js";
import type { Config } from "../config/index.js";
import { configureSpawner, StepRegistry } from "../pipeline/index.js";
import type { Logger } from "../shared/logger.js";
import { noopTelemetry, type Telemetry } from "../telemetry/index.js";
import { NatsReporter, ProgressPublisher, WorkerPool } from "../workers/index.js";
import { connectOptions, jobQueueOptions, locateNats, pullerOptions } from "./nats-setup.js";

/**
 * `vqd worker`: a worker-only process for other machines. No SQLite: it pulls from the same
 * lanes and sends every report to the daemon, acking a job only once the daemon has stored it.
 */
export class WorkerNode {
  readonly pool: WorkerPool;
  readonly #close: () => Promise<void>;
  readonly #log: Logger;
  #stopping?: Promise<void>;

  private constructor(pool: WorkerPool, log: Logger, close: () => Promise<void>) {
    this.pool = pool;
    this.#log = log;
    this.#close = close;
  }

  /** `telemetry` is made once at startup (setupTelemetry); the node shuts it down when it stops. */
  static async start(config: Config, logger: Logger, steps = StepRegistry.fromConfig(config), telemetry: Telemetry = noopTelemetry): Promise<WorkerNode> {
    steps.validatePipelines(config.pipelines);
    const servers = await locateNats(config);
    if (!servers) {
      throw new NatsUnavailableError([], "no NATS to join: set nats.servers, or start the daemon (`vqd start`) whose embedded server this worker can use");
    }
    const nc = await connectNats(connectOptions(config, servers, `vqd-worker:${process.pid}`, logger.child({ component: "nats" })));
    const options = jobQueueOptions(config);
    const subj = options.subjects;
    const queue = new JetStreamJobQueue(nc, options);
    const ticks = new ProgressPublisher(nc, subj);
    configureSpawner({ helper: config.workers.spawnHelper, log: logger.child({ component: "spawner" }) });
    const pool = new WorkerPool({
      count: config.workers.count,
      puller: new PriorityPuller(queue, pullerOptions(config, undefined, logger.child({ component: "puller" }))),
      reporter: new NatsReporter(new ApiClient(nc, subj, config.api.requestTimeoutMs, telemetry)),
      steps,
      pipeline: (name) => config.pipelines[name]?.steps,
      outputDir: config.outputDir,
      heartbeatMs: config.workers.heartbeatMs,
      logger: logger.child({ component: "worker" }),
      onProgress: (videoId, step, percent, detail) => ticks.publish(videoId, step, percent, detail),
      onJobSettled: (videoId) => ticks.forget(videoId),
      telemetry,
      subject: (lane) => subj.job(lane),
    });
    telemetry.observe("vq.nats.reconnects", "Reconnects of the worker's NATS connection", "{reconnect}", (record) => record(natsStats(nc).reconnects), true);
    const cancelSub: Subscription = nc.subscribe(subj.cancel, {
      callback: (_err, msg) => {
        pool.cancel(new TextDecoder().decode(msg.data), "cancelled");
      },
    });
    pool.start();
    await nc.flush();
    logger.info({ nats: nc.getServer(), workers: config.workers.count }, "vqd worker ready");
    return new WorkerNode(pool, logger, async () => {
      await pool.close(config.workers.shutdownDeadlineMs);
      cancelSub.unsubscribe();
      await nc.drain().catch(() => nc.close());
      await telemetry.shutdown(3000);
    });
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#close().then(() => this.#log.info({}, "vqd worker stopped"));
    return this.#stopping;
  }
}
