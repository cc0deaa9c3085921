/**
 * Shared set-up for the daemon integration suites (test/daemon/queue*, api*, worker-node*): a
 * real nats-server on a free 127.0.0.1 port, a throwaway vqd environment, an in-process daemon,
 * and a test-side NATS connection that enqueues through the API and records every domain event
 * published on `<prefix>.events.>`.
 *
 * Not a test file itself (no `.test.` in the name), so `node --test dist/test/workers/` skips it.
 */
import { waitFor as pollUntil } from "../support/wait.js";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { ApiClient, type EnqueueResultJson } from "../../src/api/index.js";
import { subjects as makeSubjects, type PublishedEvent, type Subjects } from "../../src/bus/index.js";
import { Daemon } from "../../src/daemon/index.js";
import type { StepRegistry } from "../../src/pipeline/index.js";
import { createLogger, silentLogger, type Logger } from "../../src/shared/logger.js";
import { startNatsServer, type StartNatsServerOptions, type TestNatsServer } from "../support/nats-server.js";
import { makeVqdEnv, type VqdEnv } from "../support/vqd-env.js";

/** Settings every suite wants: short ack wait and heartbeat, fast retries, quick shutdown. */
export const FAST: Readonly<Record<string, string>> = {
  VQD_NATS__ACKWAITMS: "5000",
  VQD_WORKERS__HEARTBEATMS: "1000",
  VQD_WORKERS__BACKOFF__INITIALMS: "50",
  VQD_WORKERS__BACKOFF__MAXMS: "200",
  VQD_WORKERS__SHUTDOWNDEADLINEMS: "500",
  VQD_TELEMETRY__ENABLED: "false",
  VQD_LOGGING__LEVEL: process.env.VQD_TEST_LOG ?? "warn",
  VQD_DEFAULTPIPELINE: "noop",
};

/** VQD_TEST_LOG=debug shows the in-process daemon's log on stderr while debugging a suite. */
export function testLogger(): Logger {
  const level = process.env.VQD_TEST_LOG;
  return level ? createLogger({ level, format: "json", destination: process.stderr }) : silentLogger;
}

export async function waitFor<T>(probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs: number, what: string): Promise<T> {
  return pollUntil(probe, timeoutMs, what, 10);
}

export interface HarnessOptions {
  /** More VQD_* variables (on top of FAST). */
  readonly extra?: Readonly<Record<string, string>>;
  readonly nats?: StartNatsServerOptions;
  /** Start an in-process daemon (default true). */
  readonly daemon?: boolean;
  readonly workers?: boolean;
  readonly steps?: StepRegistry;
}

export interface Harness {
  readonly srv: TestNatsServer;
  readonly env: VqdEnv;
  readonly daemon: Daemon;
  /** The test's own connection (never the daemon's). */
  readonly nc: NatsConnection;
  readonly api: ApiClient;
  readonly subjects: Subjects;
  /** Every domain event received on `<prefix>.events.>` so far, in arrival order. */
  readonly events: PublishedEvent[];
  startDaemon(): Promise<Daemon>;
  enqueue(n: number, options?: { priority?: "high" | "normal" | "low"; pipeline?: string; metadata?: Record<string, string> }): Promise<string[]>;
  eventsOf(videoId: string): PublishedEvent[];
  /** Waits until the store says the video is in `state`. */
  waitState(videoId: string, state: string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const srv = await startNatsServer(options.nats);
  let env: VqdEnv | undefined;
  let nc: NatsConnection | undefined;
  let sub: Subscription | undefined;
  let daemon: Daemon | undefined;
  try {
    env = await makeVqdEnv({ natsUrl: srv.url, extra: { ...FAST, ...options.extra } });
    const subj = makeSubjects(env.config().nats.subjectPrefix);
    nc = await connect({ servers: srv.url, name: "vqd-test" });
    const events: PublishedEvent[] = [];
    sub = nc.subscribe(subj.eventsWildcard, {
      callback: (_err, msg) => {
        events.push(JSON.parse(new TextDecoder().decode(msg.data)) as PublishedEvent);
      },
    });
    await nc.flush();
    const api = new ApiClient(nc, subj, 10_000);
    const e = env;
    const startDaemon = async (): Promise<Daemon> => {
      daemon = await Daemon.start({ config: e.config(), logger: testLogger(), workers: options.workers ?? true, ...(options.steps ? { steps: options.steps } : {}) });
      return daemon;
    };
    if (options.daemon ?? true) await startDaemon();
    const conn = nc;
    const s = sub;
    const h: Harness = {
      srv,
      env,
      get daemon(): Daemon {
        if (!daemon) throw new Error("no in-process daemon in this suite");
        return daemon;
      },
      nc,
      api,
      subjects: subj,
      events,
      startDaemon,
      async enqueue(n, o = {}) {
        const paths = await e.videos(n);
        const results = await api.call<"enqueue", EnqueueResultJson[]>("enqueue", { paths, ...o });
        return results.map((r) => {
          if (!("id" in r)) throw new Error(`enqueue refused: ${r.error}`);
          return r.id;
        });
      },
      eventsOf: (videoId) => events.filter((ev) => ev.videoId === videoId),
      async waitState(videoId, state, timeoutMs = 10_000) {
        await waitFor(() => h.daemon.store.get(videoId)?.state === state, timeoutMs, `video ${videoId} to be ${state} (is ${h.daemon.store.get(videoId)?.state})`);
      },
      async close() {
        await daemon?.stop();
        s.unsubscribe();
        await conn.close();
        await e.cleanup();
        await srv.stop();
      },
    };
    return h;
  } catch (err) {
    await daemon?.stop().catch(() => undefined);
    sub?.unsubscribe();
    await nc?.close().catch(() => undefined);
    await env?.cleanup();
    await srv.stop();
    throw err;
  }
}

/** Global log position of the first event of `type` in a video's timeline (the store's order). */
export function positionOf(daemon: Daemon, videoId: string, type: string): number {
  const e = daemon.store.timeline(videoId).find((ev) => ev.type === type);
  if (!e) throw new Error(`video ${videoId} has no ${type} event`);
  return e.position;
}

export function countOf(daemon: Daemon, videoId: string, type: string): number {
  return daemon.store.timeline(videoId).filter((ev) => ev.type === type).length;
}
