/**
 * The basic suite: startup, idle memory, idle CPU, the database through the data layer, the
 * event bus over NATS and the JetStream job queue — the reference app's basic suite, measured on
 * the real components (spawned `vqd start`, SQLite files, a real nats-server).
 */
import { join } from "node:path";
import { JetStreamJobQueue, PriorityPuller, subjects as makeSubjects, type JobToPublish, type ReceivedJob } from "../bus/index.js";
import { jobQueueOptions, pullerOptions } from "../daemon/nats-setup.js";
import { LANES, type Lane } from "../domain/index.js";
import { openDatabase, VideoStore, type Database } from "../store/index.js";
import { nodeBaselineMs, startDaemonChild, type StartedChild } from "./daemon-child.js";
import { slowed } from "./inject.js";
import { max, MB, mean, median, min, now, processCpuSeconds, processRssBytes, sleep, throwIfAborted, turn, within } from "./measure.js";
import { rawStore } from "./raw-store.js";
import { makeEvents, storm, viaEventBus } from "./storm.js";
import { fig, fmt, type StepDef } from "./suite.js";

export interface BasicPlan {
  readonly startupRuns: number;
  readonly settleMs: number;
  readonly idleWindowMs: number;
  readonly idleSampleMs: number;
  readonly dbAppends: number;
  readonly dbReads: number;
  readonly dbUpdates: number;
  readonly dbBulk: number;
  readonly dbReps: number;
  readonly busEvents: number;
  readonly queueJobs: number;
}

/** The reference app's counts. */
export const BASIC_FULL: BasicPlan = {
  startupRuns: 5,
  settleMs: 2000,
  idleWindowMs: 10_000,
  idleSampleMs: 250,
  dbAppends: 1000,
  dbReads: 100,
  dbUpdates: 100,
  dbBulk: 1000,
  dbReps: 5,
  busEvents: 10_000,
  queueJobs: 1000,
};

export const BASIC_QUICK: BasicPlan = {
  startupRuns: 2,
  settleMs: 500,
  idleWindowMs: 2000,
  idleSampleMs: 200,
  dbAppends: 200,
  dbReads: 50,
  dbUpdates: 50,
  dbBulk: 200,
  dbReps: 2,
  busEvents: 2000,
  queueJobs: 200,
};

/** The reference app's published figures, in our units. */
const REF = {
  startupS: 0.002,
  idleMB: 26.18,
  idleCpuPct: 0,
  insertUs: 10,
  selectUs: 7,
  updateUs: 6,
  bulkMs: 3.83,
  busUs: 2.9,
  busPerS: 344_828,
  addUs: 2.62,
  getUs: 3.69,
  completeUs: 0.57,
};

/**
 * A daemon stopped the instant it is ready can take its pull requests' full expiry (30 s) to stop
 * (the workers' pulls are being opened as "vqd ready" is logged); the suite lets it settle first.
 */
const STOP_AFTER_READY_MS = 300;

/** 20% high, 50% normal, 30% low: the mix the queue steps publish. */
export function laneOf(i: number): Lane {
  const r = i % 10;
  return r < 2 ? "high" : r < 7 ? "normal" : "low";
}

export function basicSteps(plan: BasicPlan): StepDef[] {
  // The last daemon started by the startup step stays up for the idle step.
  let idleChild: StartedChild | undefined;
  let idleConfigFile: string | undefined;

  const startup: StepDef = {
    id: "startup",
    title: `startup (${plan.startupRuns} runs of \`vqd start\`)`,
    async run(ctx) {
      const config = await ctx.scratchConfig("startup");
      const dir = config.dataDir;
      const file = join(dir, "config.yaml");
      await ctx.writeConfigFile(config, file);
      idleConfigFile = file;
      ctx.progress.advance(0, "warm-up run");
      // Untimed: creates the database and the stream, and warms the file cache, as any restart finds them.
      const warm = await startDaemonChild(file, dir, { signal: ctx.signal });
      await sleep(STOP_AFTER_READY_MS, ctx.signal);
      await warm.stop();
      await nodeBaselineMs();
      const ready: number[] = [];
      const node: number[] = [];
      const stops: number[] = [];
      for (let i = 0; i < plan.startupRuns; i++) {
        throwIfAborted(ctx.signal);
        node.push(await nodeBaselineMs());
        const child = await startDaemonChild(file, dir, { signal: ctx.signal });
        ctx.defer(() => child.kill());
        ready.push(child.readyMs);
        if (i < plan.startupRuns - 1) {
          await sleep(STOP_AFTER_READY_MS, ctx.signal);
          stops.push(await child.stop());
        }
        else idleChild = child;
        ctx.progress.advance((i + 1) / plan.startupRuns, `run ${i + 1}: ${fmt(child.readyMs, 0)} ms`);
      }
      const med = median(ready) / 1000;
      const nodeMed = median(node) / 1000;
      return {
        method: `spawn \`vqd start\` on a scratch data dir with external NATS (${ctx.nats.url}), time from spawn to the "vqd ready" log line; SIGTERM ${STOP_AFTER_READY_MS} ms later; one untimed warm-up run first. Baseline: spawn to exit of \`node -e 0\`, alternating with the daemon runs.`,
        figures: [
          fig("startup.median_s", "start to ready, median", med, "s", "lower", { reference: REF.startupS, headline: true, samples: ready.map((ms) => ms / 1000) }),
          fig("startup.mean_s", "start to ready, mean", mean(ready) / 1000, "s", "lower"),
          fig("startup.min_s", "start to ready, fastest", min(ready) / 1000, "s", "lower"),
          fig("startup.max_s", "start to ready, slowest", max(ready) / 1000, "s", "lower"),
          fig("startup.node_median_s", "`node -e 0` spawn to exit, median", nodeMed, "s", "none", { samples: node.map((ms) => ms / 1000) }),
          fig("startup.vs_node_x", "start to ready / `node -e 0`", med / nodeMed, "x", "lower"),
          fig("startup.stop_median_s", "SIGTERM to exit, median", stops.length > 0 ? median(stops) / 1000 : null, "s", "lower"),
        ],
        notes: ["The reference app's 0.002 s was the time to import its modules, not to start a daemon."],
        summary: `median ${fmt(med * 1000, 0)} ms to ready (node -e 0: ${fmt(nodeMed * 1000, 0)} ms, ${fmt(med / nodeMed, 1)}x)`,
      };
    },
  };

  const idle: StepDef = {
    id: "idle",
    title: `idle memory and CPU (${plan.idleWindowMs / 1000} s)`,
    async run(ctx) {
      let child = idleChild;
      idleChild = undefined;
      if (!child) {
        const config = await ctx.scratchConfig("idle");
        const file = idleConfigFile ?? join(config.dataDir, "config.yaml");
        if (!idleConfigFile) await ctx.writeConfigFile(config, file);
        child = await startDaemonChild(file, config.dataDir, { signal: ctx.signal });
        const c = child;
        ctx.defer(() => c.kill());
      }
      try {
        if (processRssBytes(child.pid) === null) throw new Error("cannot read /proc/<pid>/status: idle memory and CPU are measured on Linux only");
        await sleep(plan.settleMs, ctx.signal);
        const rss: number[] = [];
        const cpu0 = processCpuSeconds(child.pid) as number;
        const t0 = now();
        while (now() - t0 < plan.idleWindowMs) {
          const r = processRssBytes(child.pid);
          if (r === null) throw new Error("the idle daemon exited during the measurement");
          rss.push(r / MB);
          ctx.progress.advance((now() - t0) / plan.idleWindowMs, `${fmt(r / MB, 1)} MB`);
          await sleep(plan.idleSampleMs, ctx.signal);
        }
        const cpu1 = processCpuSeconds(child.pid) as number;
        const wallS = (now() - t0) / 1000;
        const cpuPct = ((cpu1 - cpu0) / wallS) * 100;
        return {
          method: `RSS of an idle \`vqd start\` child (from /proc, every ${plan.idleSampleMs} ms) and its CPU time (user + system) over ${fmt(wallS, 1)} s, after ${plan.settleMs} ms to settle; CPU is % of one core.`,
          figures: [
            fig("idle.rss_min_mb", "idle RSS, min", min(rss), "MB", "lower"),
            fig("idle.rss_avg_mb", "idle RSS, average", mean(rss), "MB", "lower", { reference: REF.idleMB, headline: true }),
            fig("idle.rss_max_mb", "idle RSS, max", max(rss), "MB", "lower"),
            fig("idle.cpu_pct", "idle CPU", cpuPct, "%", "lower", { reference: REF.idleCpuPct, headline: true }),
            fig("idle.window_s", "measurement window", wallS, "s", "none"),
          ],
          notes: ["CPU time is counted in 10 ms clock ticks, so the CPU figure's resolution is 1 tick over the window."],
          summary: `RSS ${fmt(min(rss), 1)} / ${fmt(mean(rss), 1)} / ${fmt(max(rss), 1)} MB (min/avg/max), CPU ${fmt(cpuPct, 2)}%`,
        };
      } finally {
        await child.stop();
      }
    },
  };

  const db: StepDef = {
    id: "db",
    title: `database (${fmt(plan.dbAppends, 0)} appends, ${plan.dbReads} reads, ${plan.dbUpdates} updates, bulk read of ${fmt(plan.dbBulk, 0)})`,
    async run(ctx) {
      const dir = await ctx.dir("db");
      const sync = ctx.config.database.synchronous;
      const oursDb = await openDatabase({ file: join(dir, "ours.db"), synchronous: sync });
      let rawDb: Database | undefined;
      try {
        rawDb = await openDatabase({ file: join(dir, "raw.db"), synchronous: sync });
        const seedCount = Math.max(plan.dbBulk, plan.dbReads, plan.dbUpdates);
        const ids = seed(new VideoStore(oursDb), seedCount);
        seed(new VideoStore(rawDb), seedCount);
        const store = slowed(new VideoStore(oursDb), ctx.inject.dbDelayMs);
        const events = slowed(new VideoStore(oursDb).events, ctx.inject.dbDelayMs);
        const raw = rawStore(rawDb.raw);
        const lanes = { ours: new Map<string, Lane>(), raw: new Map<string, Lane>() };
        const flip = (side: Map<string, Lane>, id: string): Lane => {
          const next: Lane = (side.get(id) ?? "normal") === "high" ? "normal" : "high";
          side.set(id, next);
          return next;
        };
        const event = (i: number) => ({ type: "ProfileAppended", data: { i, note: "profiling append" }, metadata: { source: "profile" } });
        const pick = (i: number): string => ids[(i * 7919) % ids.length] as string;

        const perOp = async (n: number, ours: (rep: number, i: number) => unknown, base: (rep: number, i: number) => unknown): Promise<{ ours: number[]; raw: number[] }> => {
          const warm = Math.max(1, Math.ceil(n / 10));
          for (let i = 0; i < warm; i++) ours(-1, i);
          for (let i = 0; i < warm; i++) base(-1, i);
          const out = { ours: [] as number[], raw: [] as number[] };
          for (let rep = 0; rep < plan.dbReps; rep++) {
            const timeOne = (fn: (rep: number, i: number) => unknown): number => {
              const t0 = now();
              for (let i = 0; i < n; i++) fn(rep, i);
              return ((now() - t0) * 1000) / n;
            };
            // Alternate which side goes first, so drift in machine load hits both alike.
            if (rep % 2 === 0) {
              out.ours.push(timeOne(ours));
              out.raw.push(timeOne(base));
            } else {
              out.raw.push(timeOne(base));
              out.ours.push(timeOne(ours));
            }
            await turn();
            throwIfAborted(ctx.signal);
          }
          return out;
        };

        ctx.progress.advance(0.1, "appends");
        const append = await perOp(
          plan.dbAppends,
          (rep, i) => events.append(`p-${rep}-${i}`, 0, [event(i)]),
          (rep, i) => raw.append(`p-${rep}-${i}`, 0, event(i)),
        );
        ctx.progress.advance(0.4, "reads");
        const read = await perOp(
          plan.dbReads,
          (_rep, i) => store.get(pick(i)),
          (_rep, i) => raw.get(pick(i)),
        );
        ctx.progress.advance(0.6, "updates");
        const update = await perOp(
          plan.dbUpdates,
          (_rep, i) => store.execute(ids[i] as string, { type: "ChangePriority", lane: flip(lanes.ours, ids[i] as string) }),
          (_rep, i) => raw.changePriority(ids[i] as string, flip(lanes.raw, ids[i] as string)),
        );
        ctx.progress.advance(0.8, "bulk reads");
        const bulk = { ours: [] as number[], raw: [] as number[] };
        await store.list({ limit: plan.dbBulk });
        raw.list(plan.dbBulk);
        for (let rep = 0; rep < plan.dbReps; rep++) {
          let t0 = now();
          const rows = await store.list({ limit: plan.dbBulk });
          bulk.ours.push(now() - t0);
          if (rows.length !== plan.dbBulk) throw new Error(`bulk read returned ${rows.length} rows, expected ${plan.dbBulk}`);
          t0 = now();
          raw.list(plan.dbBulk);
          bulk.raw.push(now() - t0);
        }
        const m = {
          append: median(append.ours),
          appendRaw: median(append.raw),
          read: median(read.ours),
          readRaw: median(read.raw),
          update: median(update.ours),
          updateRaw: median(update.raw),
          bulk: median(bulk.ours),
          bulkRaw: median(bulk.raw),
        };
        return {
          method:
            `SqliteEventStore.append (one event, new stream), VideoStore.get, VideoStore.execute(ChangePriority) and VideoStore.list, on a scratch SQLite file with the production pragmas (WAL, synchronous=${sync}), ` +
            `${fmt(seedCount, 0)} videos seeded; the same SQL work as hand-written better-sqlite3 statements on a second file; median of ${plan.dbReps} alternating repetitions after a 10% warm-up.`,
          figures: [
            fig("db.append_us", `DB append (${fmt(plan.dbAppends, 0)} ops)`, m.append, "us", "lower", { reference: REF.insertUs, headline: true, samples: append.ours }),
            fig("db.append_raw_us", "append, raw better-sqlite3", m.appendRaw, "us", "none"),
            fig("db.append_vs_raw_x", "append, data layer / raw", m.append / m.appendRaw, "x", "lower"),
            fig("db.read_us", `read by id (${plan.dbReads} ops)`, m.read, "us", "lower", { reference: REF.selectUs, samples: read.ours }),
            fig("db.read_raw_us", "read by id, raw better-sqlite3", m.readRaw, "us", "none"),
            fig("db.read_vs_raw_x", "read by id, data layer / raw", m.read / m.readRaw, "x", "lower"),
            fig("db.update_us", `update: change priority (${plan.dbUpdates} ops)`, m.update, "us", "lower", { reference: REF.updateUs, samples: update.ours }),
            fig("db.update_raw_us", "update, raw better-sqlite3", m.updateRaw, "us", "none"),
            fig("db.update_vs_raw_x", "update, data layer / raw", m.update / m.updateRaw, "x", "lower"),
            fig("db.bulk_read_ms", `bulk read of ${fmt(plan.dbBulk, 0)} videos`, m.bulk, "ms", "lower", { reference: REF.bulkMs, samples: bulk.ours }),
            fig("db.bulk_read_raw_ms", "bulk read, raw better-sqlite3", m.bulkRaw, "ms", "none"),
          ],
          notes: [
            "An update through the data layer is a command: it appends the PriorityChanged event, rewrites the video's row and supersedes its outbox row in one transaction (the reference's UPDATE was one statement).",
            ...(ctx.inject.dbDelayMs ? [`INJECTED: every data-layer call was delayed by ${ctx.inject.dbDelayMs} ms (test of the report's verdicts).`] : []),
          ],
          summary: `append ${fmt(m.append, 1)} us (${fmt(m.append / m.appendRaw, 2)}x raw), read ${fmt(m.read, 1)} us, update ${fmt(m.update, 1)} us, bulk ${fmt(m.bulk, 2)} ms`,
        };
      } finally {
        await oursDb.close();
        await rawDb?.close();
      }
    },
  };

  const bus: StepDef = {
    id: "bus",
    title: `event bus over NATS (${fmt(plan.busEvents, 0)} events)`,
    async run(ctx) {
      const pub = await ctx.nats.connect(`vqd-profiler-pub:${process.pid}`);
      const sub = await ctx.nats.connect(`vqd-profiler-sub:${process.pid}`);
      try {
        const events = makeEvents(plan.busEvents);
        await storm(pub, sub, ctx.prefix("buswarm"), events.slice(0, Math.min(1000, events.length)), viaEventBus, ctx.signal);
        const r = await storm(pub, sub, ctx.prefix("bus"), events, viaEventBus, ctx.signal);
        const pct = (r.received / plan.busEvents) * 100;
        return {
          method: `NatsEventBus.publish of ${fmt(plan.busEvents, 0)} domain events (JSON) on one connection; a subscriber on <prefix>.events.> on a second connection parses each; the clock runs from the first publish to the last delivery. After a 1,000-event warm-up.`,
          figures: [
            fig("bus.us_per_event", "time per event, publish to delivery", r.usPerEvent, "us", "lower", { reference: REF.busUs }),
            fig("bus.events_s", "event bus throughput", r.eventsPerSec, "events/s", "higher", { reference: REF.busPerS, headline: true }),
            fig("bus.delivered", "events delivered", r.received, "", "higher"),
            fig("bus.delivered_pct", "delivered", pct, "%", "higher"),
          ],
          notes: ["The reference app's bus was an in-process list of callbacks (no network, no encoding)."],
          summary: `${fmt(r.eventsPerSec, 0)} events/s, ${fmt(r.usPerEvent, 2)} us/event, ${r.received} of ${plan.busEvents} delivered`,
        };
      } finally {
        await pub.close();
        await sub.close();
      }
    },
  };

  const queue: StepDef = {
    id: "queue",
    title: `job queue over JetStream (${fmt(plan.queueJobs, 0)} jobs)`,
    async run(ctx) {
      const n = plan.queueJobs;
      const nc = await ctx.nats.connect(`vqd-profiler-queue:${process.pid}`);
      let puller: PriorityPuller | undefined;
      try {
        const { workers } = ctx.config;
        const q = new JetStreamJobQueue(nc, jobQueueOptions(ctx.config, { subjects: makeSubjects(ctx.prefix("queue")), stream: ctx.stream("queue") }));
        await q.ensure();
        const jobs: JobToPublish[] = Array.from({ length: n }, (_, i) => ({ msgId: `profile-${i}.1`, job: { videoId: `profile-${i}`, dispatch: 1, lane: laneOf(i) } }));
        let t0 = now();
        const outcomes = await q.publish(jobs);
        const addMs = now() - t0;
        const refused = outcomes.filter((o) => !o.ok);
        if (refused.length > 0) throw new Error(`${refused.length} of ${n} publishes failed: ${(refused[0] as { error: Error }).error.message}`);
        ctx.progress.advance(0.4, "get");
        puller = new PriorityPuller(q, pullerOptions(ctx.config, LANES));
        puller.start();
        const taken: ReceivedJob[] = [];
        const p = puller;
        t0 = now();
        await within(
          (async () => {
            for (let i = 0; i < n; i++) {
              const job = await p.take();
              if (!job) throw new Error("the puller stopped");
              taken.push(job);
            }
          })(),
          { signal: ctx.signal, timeoutMs: 60_000, what: `${n} jobs from the queue (${taken.length} so far)` },
        );
        const getMs = now() - t0;
        ctx.progress.advance(0.8, "mark completed");
        t0 = now();
        for (const job of taken) job.ack();
        await nc.flush();
        const completeMs = now() - t0;
        // Acked messages leave a work-queue stream: nothing must be waiting or pending afterwards.
        const deadline = Date.now() + 5000;
        for (;;) {
          const counts = await q.laneCounts();
          const left = LANES.reduce((s, l) => s + counts[l].waiting + counts[l].inFlight, 0);
          if (left === 0) break;
          if (Date.now() > deadline) throw new Error(`${left} jobs still in the stream after all were acked`);
          await sleep(20, ctx.signal);
        }
        const order = taken.map((j) => j.job.lane);
        const firstLow = order.indexOf("low");
        const lastHigh = order.lastIndexOf("high");
        return {
          method:
            `JetStreamJobQueue on its own work-queue stream: publish ${fmt(n, 0)} job messages (20% high, 50% normal, 30% low) pipelined as the outbox relay does, ` +
            `take them with the workers' PriorityPuller (prefetch ${workers.prefetch}-${workers.prefetchMax}), ack each (then flush); times are per job.`,
          figures: [
            fig("queue.add_us", "queue add (publish, acknowledged by JetStream)", (addMs * 1000) / n, "us", "lower", { reference: REF.addUs, headline: true }),
            fig("queue.get_us", "get (pull by priority)", (getMs * 1000) / n, "us", "lower", { reference: REF.getUs }),
            fig("queue.complete_us", "mark completed (ack)", (completeMs * 1000) / n, "us", "lower", { reference: REF.completeUs }),
            fig("queue.jobs", "jobs", n, "", "none"),
          ],
          notes: [
            `Every add is stored by nats-server and acknowledged (the reference app's queue was an in-memory list). Priority order held: ${lastHigh < firstLow || firstLow < 0 ? "yes" : "no"} (last high-lane job taken at ${lastHigh}, first low-lane at ${firstLow}).`,
          ],
          summary: `add ${fmt((addMs * 1000) / n, 1)} us, get ${fmt((getMs * 1000) / n, 1)} us, ack ${fmt((completeMs * 1000) / n, 2)} us per job`,
        };
      } finally {
        await puller?.stop();
        await nc.close();
        await ctx.deleteStreams("queue").catch(() => undefined);
      }
    },
  };

  return [startup, idle, db, bus, queue];
}

/** Videos through the data layer: every fourth one running with a step done (non-trivial rows). */
export function seed(store: VideoStore, count: number): string[] {
  const ids: string[] = [];
  const steps = ["probe", "thumbnail", "transcode"];
  store.events.transaction(() => {
    for (let i = 0; i < count; i++) {
      const id = `v-${String(i).padStart(7, "0")}`;
      ids.push(id);
      store.execute(id, { type: "EnqueueVideo", path: `/srv/videos/incoming/${id}.mp4`, pipeline: "default", steps, lane: "normal", maxAttempts: 3, metadata: { source: "profile", title: `Profile video ${i}` } });
      if (i % 4 === 0) {
        store.execute(id, { type: "StartAttempt", dispatch: 1, worker: "profile" });
        store.execute(id, { type: "CompleteStep", attempt: 1, index: 0, step: "probe", outputs: { durationS: 12.5, width: 1920, height: 1080, codec: "h264" }, durationMs: 80 });
      }
    }
  });
  return ids;
}
