import type { NatsConnection } from "@nats-io/transport-node";
import { isDaemonUnavailable, type Request, type Verb } from "../api/index.js";
import { loadConfig, type Config } from "../config/index.js";
import { StepRegistry } from "../pipeline/index.js";
import type { Logger } from "../shared/logger.js";
import { openDatabase, VideoStore } from "../store/index.js";
import type { Telemetry, TelemetryRole, TraceSpan } from "../telemetry/index.js";

export interface GlobalOptions {
  readonly config?: string;
}

/** What a command needs from its surroundings; built lazily so `--help` costs nothing. */
export class CliContext {
  readonly #options: GlobalOptions;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  #config?: Config;
  #nc?: NatsConnection | null;
  #telemetry?: Promise<Telemetry>;
  /** The span this command's requests to the daemon hang under (set by commands that trace their work). */
  traceParent?: TraceSpan;

  constructor(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()) {
    this.#options = options;
    this.env = env;
    this.cwd = cwd;
  }

  get config(): Config {
    if (!this.#config) {
      const config = loadConfig({ file: this.#options.config, env: this.env, cwd: this.cwd });
      // Unknown step kinds and bad step options are config errors too (exit 78), for every command.
      StepRegistry.fromConfig(config).validatePipelines(config.pipelines);
      this.#config = config;
    }
    return this.#config;
  }

  async logger(): Promise<Logger> {
    const { createLogger } = await import("../shared/logger.js");
    const { level, format } = this.config.logging;
    return createLogger({ level, format });
  }

  /**
   * The telemetry of a CLI command (exports only when telemetry is configured; warnings go to
   * stderr so they never mix with the command's output). Made on first use; close() flushes it.
   */
  telemetry(): Promise<Telemetry> {
    this.#telemetry ??= (async () => {
      const [{ setupTelemetry }, { createLogger }] = await Promise.all([import("../telemetry/index.js"), import("../shared/logger.js")]);
      const logger = createLogger({ level: "warn", format: this.config.logging.format, destination: process.stderr });
      return setupTelemetry(this.config, { role: "cli", logger, env: this.env });
    })();
    return this.#telemetry;
  }

  /** The telemetry of `vqd start` / `vqd worker`: set up before the service's modules load; the service shuts it down. */
  async serviceTelemetry(role: TelemetryRole): Promise<Telemetry> {
    const { setupTelemetry } = await import("../telemetry/index.js");
    return setupTelemetry(this.config, { role, logger: await this.logger(), env: this.env });
  }

  /**
   * Asks the running daemon over NATS; when no daemon answers (or its NATS is down), runs
   * `fallback` against the store instead. Returns which one answered.
   */
  async viaDaemon<V extends Verb, T>(verb: V, request: Request<V>, fallback: (store: VideoStore) => Promise<T> | T): Promise<{ result: T; daemon: boolean }> {
    const nc = await this.#connect();
    if (nc) {
      try {
        const [{ ApiClient }, { subjects }] = await Promise.all([import("../api/index.js"), import("../bus/index.js")]);
        const telemetry = this.#telemetry ? await this.#telemetry : undefined;
        const api = new ApiClient(nc, subjects(this.config.nats.subjectPrefix), this.config.api.requestTimeoutMs, telemetry);
        return { result: await api.call<V, T>(verb, request, undefined, this.traceParent), daemon: true };
      } catch (err) {
        if (!isDaemonUnavailable(err)) throw err;
      }
    }
    return { result: await this.withStore(fallback), daemon: false };
  }

  async #connect(): Promise<NatsConnection | null> {
    if (this.#nc !== undefined) return this.#nc;
    this.#nc = null;
    // NATS code loads only when a command needs the daemon: the CLI starts faster without it.
    const [{ connectNats, isNatsUnavailable }, { connectOptions, locateNats }] = await Promise.all([import("../bus/index.js"), import("../daemon/nats-setup.js")]);
    const servers = await locateNats(this.config);
    if (servers) {
      try {
        this.#nc = await connectNats({ ...connectOptions(this.config, servers, `vqd-cli:${process.pid}`), timeoutMs: Math.min(2000, this.config.nats.connectTimeoutMs) });
      } catch (err) {
        if (!isNatsUnavailable(err) || (err as { exitCode?: number }).exitCode === 77) throw err;
      }
    }
    return this.#nc;
  }

  /** Closes the NATS connection if one was opened. */
  async close(): Promise<void> {
    if (this.#nc) await this.#nc.close();
    // Bounded: a collector that does not answer delays the command by at most this much.
    if (this.#telemetry) await (await this.#telemetry).shutdown(2500);
  }

  /** Opens the store for the length of fn and always closes it. */
  async withStore<T>(fn: (store: VideoStore) => Promise<T> | T): Promise<T> {
    const { database } = this.config;
    const db = await openDatabase({ file: database.file, synchronous: database.synchronous, busyTimeoutMs: database.busyTimeoutMs });
    try {
      return await fn(new VideoStore(db));
    } finally {
      await db.close();
    }
  }
}
