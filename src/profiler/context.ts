/**
 * What one profiling run works in, and how it stays away from live data (DESIGN invariant 8):
 *
 * - a scratch directory (mkdtemp) for every database, data dir, clip and output the run makes;
 *   removed at the end;
 * - its own JetStream streams and subjects: stream names start with `VQP_<RUN>` and subjects with
 *   `vqprof.<run>.`, never the configured ones, so the live daemon's workers never see the
 *   suite's jobs and the suite never pulls the live jobs; every `VQP_<RUN>*` stream is deleted at
 *   the end;
 * - NATS: the daemon's (or configured) server when it answers, else a nats-server started for the
 *   run on a free 127.0.0.1 port with its store in the scratch directory.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { stringify } from "yaml";
import { connectNats, EmbeddedNatsServer, isNatsUnavailable } from "../bus/index.js";
import type { Config } from "../config/index.js";
import { connectOptions, locateNats } from "../daemon/nats-setup.js";
import type { Logger } from "../shared/logger.js";
import { throwIfAborted } from "./measure.js";
import type { Progress } from "./progress.js";
import type { Isolation } from "./types.js";

/** Deliberate slowness for tests: proves that a slow component fails its target in the report. */
export interface Injections {
  /** Milliseconds every data-layer call (VideoStore / SqliteEventStore method) is held up by. */
  readonly dbDelayMs?: number;
}

export interface RunNats {
  readonly source: "daemon" | "own";
  readonly url: string;
  readonly servers: readonly string[];
  /** The server's version as it announced itself. */
  readonly version: string | null;
  connect(name: string): Promise<NatsConnection>;
}

export class RunContext {
  readonly config: Config;
  readonly quick: boolean;
  readonly signal: AbortSignal;
  readonly progress: Progress;
  readonly logger: Logger;
  readonly inject: Injections;
  readonly scratch: string;
  /** Random per run: `VQP_<RUN>` streams, `vqprof.<run>` subjects. */
  readonly runId: string;
  readonly nats: RunNats;
  readonly #cleanups: (() => Promise<unknown> | unknown)[] = [];
  readonly #admin: NatsConnection;

  private constructor(o: {
    config: Config;
    quick: boolean;
    signal: AbortSignal;
    progress: Progress;
    logger: Logger;
    inject: Injections;
    scratch: string;
    runId: string;
    nats: RunNats;
    admin: NatsConnection;
  }) {
    this.config = o.config;
    this.quick = o.quick;
    this.signal = o.signal;
    this.progress = o.progress;
    this.logger = o.logger;
    this.inject = o.inject;
    this.scratch = o.scratch;
    this.runId = o.runId;
    this.nats = o.nats;
    this.#admin = o.admin;
  }

  static async open(o: { config: Config; quick: boolean; signal: AbortSignal; progress: Progress; logger: Logger; inject?: Injections }): Promise<RunContext> {
    throwIfAborted(o.signal);
    const scratch = await mkdtemp(join(tmpdir(), "vqd-profile-"));
    await chmod(scratch, 0o700);
    const runId = randomBytes(5).toString("hex");
    const cleanups: (() => Promise<unknown> | unknown)[] = [() => rm(scratch, { recursive: true, force: true })];
    try {
      const { nats, admin, stop } = await openRunNats(o.config, scratch, o.logger, o.progress);
      cleanups.push(stop);
      const ctx = new RunContext({ ...o, inject: o.inject ?? {}, scratch, runId, nats, admin });
      ctx.#cleanups.push(...cleanups);
      return ctx;
    } catch (err) {
      for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
      throw err;
    }
  }

  /** The stream name of one part of the run (`VQP_<RUN>_<PART>`). */
  stream(part: string): string {
    return `VQP_${this.runId.toUpperCase()}_${part.toUpperCase()}`;
  }

  /** The subject prefix of one part of the run (`vqprof.<run>.<part>`). */
  prefix(part: string): string {
    return `vqprof.${this.runId}.${part}`;
  }

  isolation(): Isolation {
    return {
      nats: this.nats.source,
      natsUrl: this.nats.url,
      stream: `VQP_${this.runId.toUpperCase()}_*`,
      subjectPrefix: `vqprof.${this.runId}`,
      scratchDir: this.scratch,
    };
  }

  /** A directory under the scratch directory. */
  async dir(name: string): Promise<string> {
    const d = join(this.scratch, name);
    await mkdir(d, { recursive: true });
    return d;
  }

  /** Registers work for close(), run last-in first-out. */
  defer(fn: () => Promise<unknown> | unknown): void {
    this.#cleanups.push(fn);
  }

  /**
   * A complete config for a daemon of this run (in process or spawned): the operator's config
   * with everything that could reach live data replaced by scratch locations and run names.
   */
  async scratchConfig(part: string, overrides: { defaultPipeline?: string } = {}): Promise<Config> {
    const dir = await this.dir(part);
    await mkdir(join(dir, "videos"), { recursive: true });
    const base = this.config;
    const own = this.nats.source === "own";
    const off = (s: { enabled: boolean; cron: string }) => ({ ...s, enabled: false });
    return {
      ...base,
      dataDir: dir,
      database: { ...base.database, file: join(dir, "vqd.db") },
      nats: {
        ...base.nats,
        servers: [...this.nats.servers],
        embedded: { ...base.nats.embedded, storeDir: join(dir, "nats") },
        subjectPrefix: this.prefix(part),
        stream: this.stream(part),
        ...(own
          ? { user: "", password: "", passwordFile: "", token: "", tokenFile: "", credsFile: "", nkeySeedFile: "", tls: { caFile: "", certFile: "", keyFile: "" } }
          : {}),
      },
      allowedRoots: [join(dir, "videos")],
      outputDir: join(dir, "outputs"),
      reportsDir: join(dir, "reports"),
      defaultPipeline: overrides.defaultPipeline ?? "noop",
      // Never watch (and move files out of) the live inbox folders.
      inboxes: [],
      snapshots: { ...base.snapshots, heapSnapshotDir: join(dir, "snapshots") },
      // Metrics and traces of a run's daemons stay apart from the live daemon's.
      telemetry: { ...base.telemetry, serviceName: `${base.telemetry.serviceName}-profile` },
      // A daemon of the run must never start profiling runs of its own.
      schedules: {
        ...base.schedules,
        basicProfile: off(base.schedules.basicProfile),
        advancedProfile: off(base.schedules.advancedProfile),
        memorySnapshot: off(base.schedules.memorySnapshot),
      },
    };
  }

  /** Writes a config as a YAML file only this user can read (it may hold NATS credentials). */
  async writeConfigFile(config: Config, file: string): Promise<void> {
    await writeFile(file, stringify(JSON.parse(JSON.stringify(config)) as unknown), { mode: 0o600 });
  }

  /** Deletes the streams of one part of the run (or of the whole run). */
  async deleteStreams(part?: string): Promise<string[]> {
    const prefix = part === undefined ? `VQP_${this.runId.toUpperCase()}_` : this.stream(part);
    const jsm = await jetstreamManager(this.#admin);
    const deleted: string[] = [];
    for await (const s of jsm.streams.list()) {
      const name = s.config.name;
      if (part === undefined ? name.startsWith(prefix) : name === prefix) {
        await jsm.streams.delete(name).catch(() => false);
        deleted.push(name);
      }
    }
    return deleted;
  }

  /** Stream names on the server (to prove what the run left behind). */
  async streamNames(): Promise<string[]> {
    const jsm = await jetstreamManager(this.#admin);
    const names: string[] = [];
    for await (const s of jsm.streams.list()) names.push(s.config.name);
    return names;
  }

  /** Deletes the run's streams, stops its nats-server (if it started one), removes the scratch directory. */
  async close(): Promise<void> {
    try {
      await this.deleteStreams();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, "profiler: could not delete the run's streams");
    }
    await this.#admin.close().catch(() => undefined);
    for (const c of this.#cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, "profiler: cleanup step failed");
      }
    }
  }
}

/** The environment for spawned daemons: ours minus every VQD_* variable (the config file says it all). */
export function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("VQD_")) env[k] = v;
  return env;
}

async function openRunNats(
  config: Config,
  scratch: string,
  logger: Logger,
  progress: Progress,
): Promise<{ nats: RunNats; admin: NatsConnection; stop: () => Promise<void> }> {
  const name = `vqd-profiler:${process.pid}`;
  const servers = await locateNats(config);
  if (servers) {
    try {
      const options = { ...connectOptions(config, servers, name), timeoutMs: Math.min(2000, config.nats.connectTimeoutMs) };
      const admin = await connectNats(options);
      const nats: RunNats = {
        source: "daemon",
        url: admin.getServer(),
        servers,
        version: admin.info?.version ?? null,
        connect: (n) => connectNats({ ...connectOptions(config, servers, n) }),
      };
      return { nats, admin, stop: async () => undefined };
    } catch (err) {
      if (!isNatsUnavailable(err) || (err as { exitCode?: number }).exitCode === 77) throw err;
      progress.note(`NATS at ${servers.join(", ")} not reachable; starting a nats-server for this run`);
    }
  }
  const server = new EmbeddedNatsServer({
    binary: config.nats.embedded.binary,
    host: "127.0.0.1",
    port: 0,
    storeDir: join(scratch, "nats-server"),
    runtimeFile: join(scratch, "nats-server", "runtime.json"),
    logger: logger.child({ component: "profiler-nats" }),
  });
  const info = await server.start();
  try {
    const admin = await connectNats({ servers: [info.url], name });
    const nats: RunNats = {
      source: "own",
      url: info.url,
      servers: [info.url],
      version: admin.info?.version ?? null,
      connect: (n) => connectNats({ servers: [info.url], name: n }),
    };
    return { nats, admin, stop: () => server.stop() };
  } catch (err) {
    await server.stop();
    throw err;
  }
}
