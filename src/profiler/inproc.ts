/**
 * A daemon of the run, in this process, on a scratch config: store, relay, reconciler, API and
 * real workers, exactly as `vqd start` builds them. Videos go in the way another service sends
 * them (requests on `<prefix>.api.enqueue`), and outcomes are read from `<prefix>.events.*`.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { ApiClient, type EnqueueResultJson } from "../api/index.js";
import { subjects as makeSubjects, type Subjects } from "../bus/index.js";
import type { Config } from "../config/index.js";
import { Daemon } from "../daemon/index.js";
import type { Lane } from "../domain/index.js";
import { StepRegistry } from "../pipeline/index.js";
import { silentLogger } from "../shared/logger.js";
import type { RunContext } from "./context.js";
import { now, within } from "./measure.js";

export const TERMINAL_EVENTS = ["VideoCompleted", "VideoDeadLettered", "VideoCancelled"] as const;

export interface Finished {
  readonly videoId: string;
  readonly type: (typeof TERMINAL_EVENTS)[number];
  /** performance.now() when the event arrived. */
  readonly at: number;
}

export class InProcessDaemon {
  readonly daemon: Daemon;
  readonly config: Config;
  readonly subjects: Subjects;
  readonly api: ApiClient;
  readonly #nc: NatsConnection;
  readonly #subs: Subscription[];
  readonly #finished = new Map<string, Finished>();
  #waiting: { count: number; resolve: () => void } | undefined;

  private constructor(daemon: Daemon, config: Config, nc: NatsConnection) {
    this.daemon = daemon;
    this.config = config;
    this.#nc = nc;
    this.subjects = makeSubjects(config.nats.subjectPrefix);
    this.api = new ApiClient(nc, this.subjects, 60_000);
    const decoder = new TextDecoder();
    this.#subs = TERMINAL_EVENTS.map((type) =>
      nc.subscribe(this.subjects.event(type), {
        callback: (_err, msg) => {
          const e = JSON.parse(decoder.decode(msg.data)) as { videoId: string };
          if (!this.#finished.has(e.videoId)) this.#finished.set(e.videoId, { videoId: e.videoId, type, at: now() });
          if (this.#waiting && this.#finished.size >= this.#waiting.count) this.#waiting.resolve();
        },
      }),
    );
  }

  static async start(ctx: RunContext, config: Config): Promise<InProcessDaemon> {
    const daemon = await Daemon.start({ config, logger: silentLogger, steps: StepRegistry.fromConfig(config), workers: true });
    let nc: NatsConnection | undefined;
    try {
      nc = await ctx.nats.connect(`vqd-profiler-client:${process.pid}`);
      const d = new InProcessDaemon(daemon, config, nc);
      await nc.flush();
      return d;
    } catch (err) {
      await nc?.close();
      await daemon.stop();
      throw err;
    }
  }

  /** n small files under the daemon's allowed root (for pipelines that do not read them). */
  async placeholders(n: number): Promise<string[]> {
    const paths: string[] = [];
    for (let i = 0; i < n; i++) {
      const p = join(this.config.allowedRoots[0] as string, `profile-${String(i).padStart(5, "0")}.mp4`);
      await writeFile(p, `vqd profile placeholder ${i}\n`);
      paths.push(p);
    }
    return paths;
  }

  async enqueue(paths: readonly string[], options: { priority?: Lane; pipeline?: string } = {}): Promise<string[]> {
    const results = await this.api.call<"enqueue", EnqueueResultJson[]>("enqueue", { paths: [...paths], ...options });
    return results.map((r) => {
      if (!("id" in r)) throw new Error(`enqueue refused ${r.input}: ${r.error}`);
      return r.id;
    });
  }

  finished(): ReadonlyMap<string, Finished> {
    return this.#finished;
  }

  /** Resolves once `count` videos have reached a terminal state (or rejects on abort / timeout). */
  async waitFinished(count: number, options: { signal?: AbortSignal; timeoutMs: number }): Promise<void> {
    if (this.#finished.size >= count) return;
    const done = new Promise<void>((resolve) => (this.#waiting = { count, resolve }));
    try {
      await within(done, { ...options, what: `${count} videos to finish (${this.#finished.size} so far)` });
    } finally {
      this.#waiting = undefined;
    }
  }

  /** Checks the record: every video in the store completed, exactly one VideoCompleted each. */
  async verifyCompleted(expected: number): Promise<void> {
    const counts = await this.daemon.store.counts();
    const row = this.daemon.store.database.raw
      .prepare("SELECT count(*) AS n, count(DISTINCT stream_id) AS d FROM events WHERE type = 'VideoCompleted'")
      .get() as { n: number; d: number };
    if (counts.total !== expected || counts.byState.completed !== expected || row.n !== expected || row.d !== expected) {
      const failed = (await this.daemon.store.list({ state: "dead", limit: 1 }))[0];
      throw new Error(
        `${counts.byState.completed} of ${expected} videos completed (${counts.total} in the store, ${row.n} VideoCompleted events)` +
          (failed?.lastError ? `; first failure: ${failed.lastError.step}: ${failed.lastError.message}` : ""),
      );
    }
  }

  async stop(): Promise<void> {
    for (const s of this.#subs) s.unsubscribe();
    await this.#nc.close().catch(() => undefined);
    await this.daemon.stop();
  }
}
