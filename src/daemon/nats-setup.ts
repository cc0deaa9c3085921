import { join } from "node:path";
import {
  connectNats,
  EmbeddedNatsServer,
  readEmbeddedRuntime,
  subjects as makeSubjects,
  type BusLogger,
  type ConnectNatsOptions,
  type JobQueueOptions,
  type PullerOptions,
  type Subjects,
} from "../bus/index.js";
import { LANES, type Lane } from "../domain/index.js";
import { resolveSecret, type Config } from "../config/index.js";
import type { Logger } from "../shared/logger.js";
import type { NatsConnection } from "@nats-io/transport-node";

/** Where the embedded server's URL is written for the CLI and `vqd worker` to find. */
export const embeddedRuntimeFile = (config: Config): string => join(config.dataDir, "run", "nats.json");

export function connectOptions(config: Config, servers: string[], name: string, logger?: Logger): ConnectNatsOptions {
  const n = config.nats;
  const pass = resolveSecret(n.password, n.passwordFile);
  const token = resolveSecret(n.token, n.tokenFile);
  const tls = n.tls.caFile || n.tls.certFile ? { caFile: n.tls.caFile || undefined, certFile: n.tls.certFile || undefined, keyFile: n.tls.keyFile || undefined } : undefined;
  return {
    servers,
    name,
    ...(n.user ? { user: n.user, pass } : {}),
    ...(token ? { token } : {}),
    ...(n.credsFile ? { credsFile: n.credsFile } : {}),
    ...(n.nkeySeedFile ? { nkeySeedFile: n.nkeySeedFile } : {}),
    ...(tls ? { tls } : {}),
    timeoutMs: n.connectTimeoutMs,
    ...(logger ? { logger } : {}),
  };
}

/**
 * The job queue's settings from the config: the configured stream and subjects, or (the
 * profiler) scratch ones of its own.
 */
export function jobQueueOptions(config: Config, scratch?: { subjects: Subjects; stream: string }): JobQueueOptions {
  const n = config.nats;
  return {
    subjects: scratch?.subjects ?? makeSubjects(n.subjectPrefix),
    stream: scratch?.stream ?? n.stream,
    ackWaitMs: n.ackWaitMs,
    maxDeliver: n.maxDeliver,
    duplicateWindowMs: n.duplicateWindowMs,
  };
}

/** The priority puller's settings from the config, for the given lanes (default: the enabled ones), highest first. */
export function pullerOptions(config: Config, lanes: readonly Lane[] = LANES.filter((l) => config.lanes[l].enabled), logger?: BusLogger): PullerOptions {
  const w = config.workers;
  return { lanes, prefetch: w.prefetch, prefetchMax: w.prefetchMax, heartbeatMs: w.heartbeatMs, ...(logger ? { logger } : {}) };
}

/**
 * The NATS servers a client process (CLI, `vqd worker`) should use: the configured ones, or the
 * running daemon's embedded server. Null when the daemon runs its own server and it is not up.
 */
export async function locateNats(config: Config): Promise<string[] | null> {
  if (config.nats.servers.length > 0) return [...config.nats.servers];
  const runtime = await readEmbeddedRuntime(embeddedRuntimeFile(config));
  return runtime ? [runtime.url] : null;
}

export interface NatsHandle {
  readonly nc: NatsConnection;
  readonly embedded: EmbeddedNatsServer | null;
  close(): Promise<void>;
}

/** The daemon's connection: to the configured servers, or to an embedded nats-server it starts. */
export async function startNats(config: Config, logger: Logger): Promise<NatsHandle> {
  let embedded: EmbeddedNatsServer | null = null;
  let servers = [...config.nats.servers];
  if (servers.length === 0) {
    const e = config.nats.embedded;
    embedded = new EmbeddedNatsServer({
      binary: e.binary,
      host: e.host,
      port: e.port,
      storeDir: e.storeDir,
      runtimeFile: embeddedRuntimeFile(config),
      logger: logger.child({ component: "nats-server" }),
    });
    const info = await embedded.start();
    servers = [info.url];
  }
  try {
    const nc = await connectNats(connectOptions(config, servers, `vqd-daemon:${process.pid}`, logger.child({ component: "nats" })));
    return {
      nc,
      embedded,
      async close() {
        await nc.drain().catch(() => nc.close());
        await embedded?.stop();
      },
    };
  } catch (err) {
    await embedded?.stop();
    throw err;
  }
}
