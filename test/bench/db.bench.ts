/**
 * db group: our data layer (src/store) against hand-written better-sqlite3 statements doing the
 * same SQL work, side by side in one run, on two database files opened with the same pragmas and
 * schema (both by openDatabase). Seeding goes through VideoStore on both files so that they hold
 * the same rows; only the timed loops differ.
 */
import { deepStrictEqual, equal } from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type BetterSqlite3 from "better-sqlite3";
import { type Lane, type Video, type VideoState } from "../../src/domain/index.js";
import { MixedWorkload } from "../../src/profiler/stress.js";
import { openDatabase, SqliteEventStore, VideoStore, type Database, type NewEvent } from "../../src/store/index.js";
import { alternate, median, msOnce, seededRandom, shuffled, tempDir, usPerOp } from "./measure.js";
import type { BenchContext, BenchGroup, BenchResult, Figure } from "./types.js";

/** Published figures of the reference app (shown next to ours, never a goal by themselves). */
const REFERENCE = { insert_us: 10, select_us: 7, update_us: 6, bulk_select_ms: 3.83, stress_ops_s: 770 } as const;

const RATIO_GOAL = { kind: "ratio-max", value: 1.5 } as const;
const STRESS_GOAL = { kind: "min", value: 7_700 } as const;

interface Plan {
  /** Timed operations per repetition of a per-op figure (plus 10% untimed warm-up). */
  readonly ops: number;
  readonly reps: number;
  readonly bulkReads: number;
  readonly bulkSize: number;
  /** Videos seeded in each database (at least bulkSize). */
  readonly videos: number;
  readonly stressOps: number;
  readonly stressReps: number;
}

const FULL: Plan = { ops: 20_000, reps: 5, bulkReads: 20, bulkSize: 1_000, videos: 2_000, stressOps: 10_000, stressReps: 3 };
const QUICK: Plan = { ops: 2_000, reps: 3, bulkReads: 5, bulkSize: 1_000, videos: 1_000, stressOps: 2_000, stressReps: 1 };

const STEPS = ["probe", "transcode", "thumbnail"] as const;
const TERMINAL: ReadonlySet<string> = new Set<VideoState>(["completed", "dead", "cancelled"]);

const videoId = (i: number): string => `vid-${String(i).padStart(6, "0")}`;
const warmupOf = (n: number): number => Math.max(1, Math.ceil(n / 10));

/** Same rows in both files: every 4th video is running with one step done (non-trivial JSON columns). */
export function seed(store: VideoStore, count: number): string[] {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = videoId(i);
    ids.push(id);
    store.execute(id, {
      type: "EnqueueVideo",
      path: `/srv/videos/incoming/${id}.mp4`,
      pipeline: "default",
      steps: STEPS,
      lane: "normal",
      maxAttempts: 3,
      metadata: { source: "bench", title: `Bench video ${i}` },
    });
    if (i % 4 === 0) {
      store.execute(id, { type: "StartAttempt", dispatch: 1, worker: "bench-worker" });
      store.execute(id, {
        type: "CompleteStep",
        attempt: 1,
        index: 0,
        step: "probe",
        outputs: { durationS: 123.4, width: 1920, height: 1080, codec: "h264" },
        durationMs: 87,
      });
    }
  }
  return ids;
}

// ---------------------------------------------------------------- raw better-sqlite3 side

interface RawVideoRow {
  id: string;
  version: number;
  state: string;
  lane: string;
  pipeline: string;
  path: string;
  attempts: number;
  max_attempts: number;
  dispatch: number;
  current_step: string | null;
  steps: string;
  completed_steps: string;
  last_error: string | null;
  metadata: string;
  not_before: string | null;
  enqueued_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** Hand-written row mapping: the same JSON.parse work and object shape as the store's. */
function mapRow(r: RawVideoRow): Video {
  return {
    id: r.id,
    version: r.version,
    state: r.state as VideoState,
    lane: r.lane as Lane,
    pipeline: r.pipeline,
    path: r.path,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    dispatch: r.dispatch,
    steps: JSON.parse(r.steps) as string[],
    completedSteps: JSON.parse(r.completed_steps) as Video["completedSteps"],
    lastError: r.last_error === null ? null : (JSON.parse(r.last_error) as Video["lastError"]),
    metadata: JSON.parse(r.metadata) as Record<string, string>,
    notBefore: r.not_before,
    enqueuedAt: r.enqueued_at,
    updatedAt: r.updated_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

/** The same SQL work as the store, with statements and transaction functions made once. */
export function rawSide(raw: BetterSqlite3.Database) {
  const version = raw.prepare<[string], { stream_version: number }>(
    "SELECT stream_version FROM events WHERE stream_id = ? ORDER BY stream_version DESC LIMIT 1",
  );
  const insertEvent = raw.prepare<[string, string, number, string, string, string, string]>(
    "INSERT INTO events (event_id, stream_id, stream_version, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
  );
  const getVideo = raw.prepare<[string], RawVideoRow>("SELECT * FROM videos WHERE id = ?");
  const listVideos = raw.prepare<[number], RawVideoRow>("SELECT * FROM videos ORDER BY id LIMIT ?");
  const updateVideo = raw.prepare(
    `UPDATE videos SET version = ?, state = ?, lane = ?, pipeline = ?, path = ?, attempts = ?, max_attempts = ?, dispatch = ?,
       current_step = ?, steps = ?, completed_steps = ?, last_error = ?, metadata = ?, not_before = ?, enqueued_at = ?,
       updated_at = ?, started_at = ?, finished_at = ? WHERE id = ?`,
  );
  const supersede = raw.prepare<[string, string, number]>(
    "UPDATE outbox SET sent_at = ?, last_error = 'superseded' WHERE video_id = ? AND dispatch < ? AND sent_at IS NULL",
  );
  const insertOutbox = raw.prepare<[string, number, string, string, number, string]>(
    "INSERT INTO outbox (video_id, dispatch, lane, msg_id, available_at, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (msg_id) DO NOTHING",
  );

  /** Optimistic append of one event: version check SELECT + INSERT, one IMMEDIATE transaction. */
  const append = raw.transaction((streamId: string, expected: number, event: NewEvent) => {
    const current = version.get(streamId)?.stream_version ?? 0;
    if (current !== expected) throw new Error(`concurrency conflict on ${streamId}`);
    const recordedAt = new Date().toISOString();
    const eventId = randomUUID();
    const info = insertEvent.run(
      eventId,
      streamId,
      current + 1,
      event.type,
      JSON.stringify(event.data),
      JSON.stringify(event.metadata ?? {}),
      recordedAt,
    );
    return { nextExpectedVersion: current + 1, position: Number(info.lastInsertRowid), eventId, recordedAt };
  });

  /**
   * ChangePriority as the store runs it: load the row, append the event (the loaded version is
   * the stream version, as in the store: no version SELECT), rewrite the read-model row,
   * supersede the older outbox row and insert the new one.
   */
  const changePriority = raw.transaction((id: string, lane: Lane): Video => {
    const row = getVideo.get(id);
    if (!row) throw new Error(`no video ${id}`);
    const v = mapRow(row);
    if (TERMINAL.has(v.state) || v.lane === lane) throw new Error(`ChangePriority refused for ${id}`);
    const now = new Date();
    const at = now.toISOString();
    const next: Video = {
      ...v,
      version: v.version + 1,
      lane,
      updatedAt: at,
      dispatch: v.state === "running" ? v.dispatch : v.dispatch + 1,
    };
    insertEvent.run(randomUUID(), id, next.version, "PriorityChanged", JSON.stringify({ from: v.lane, to: lane, at }), JSON.stringify({}), at);
    updateVideo.run(
      next.version,
      next.state,
      next.lane,
      next.pipeline,
      next.path,
      next.attempts,
      next.maxAttempts,
      next.dispatch,
      next.state === "running" ? (next.steps[next.completedSteps.length] ?? null) : null,
      JSON.stringify(next.steps),
      JSON.stringify(next.completedSteps),
      next.lastError ? JSON.stringify(next.lastError) : null,
      JSON.stringify(next.metadata),
      next.notBefore,
      next.enqueuedAt,
      next.updatedAt,
      next.startedAt,
      next.finishedAt,
      id,
    );
    if (next.dispatch !== v.dispatch) {
      supersede.run(at, id, next.dispatch);
      if (next.state === "queued" || next.state === "retrying") {
        insertOutbox.run(id, next.dispatch, lane, `${id}.${next.dispatch}`, next.notBefore ? Date.parse(next.notBefore) : now.getTime(), at);
      }
    }
    return next;
  });

  return {
    append: (streamId: string, expected: number, event: NewEvent) => append.immediate(streamId, expected, event),
    get: (id: string): Video | null => {
      const row = getVideo.get(id);
      return row ? mapRow(row) : null;
    },
    list: (limit: number): Video[] => listVideos.all(limit).map(mapRow),
    changePriority: (id: string, lane: Lane): Video => changePriority.immediate(id, lane),
  };
}

// ---------------------------------------------------------------- per-op figures

/** Median us/op over alternating repetitions (each after its own untimed warm-up). */
async function pairedPerOp(
  plan: Plan,
  ours: (rep: number, i: number) => void,
  raw: (rep: number, i: number) => void,
): Promise<{ ours: number; raw: number }> {
  const warm = warmupOf(plan.ops);
  usPerOp(warm, (i) => ours(-1, i));
  usPerOp(warm, (i) => raw(-1, i));
  const samples = await alternate(
    plan.reps,
    (rep) => usPerOp(plan.ops, (i) => ours(rep, i)),
    (rep) => usPerOp(plan.ops, (i) => raw(rep, i)),
  );
  return { ours: median(samples.a), raw: median(samples.b) };
}

let sink = 0; // results land here so that no loop body is dead code

// ---------------------------------------------------------------- stress

async function stressOnce(dir: string, plan: Plan, rep: number): Promise<{ opsPerSec: number; counts: MixedWorkload["counts"] }> {
  const db = await openDatabase({ file: join(dir, `stress-${rep}.db`), synchronous: "normal" });
  try {
    // The profiler's DB stress workload, so `npm run bench` and `vqd profile advanced` measure the same thing.
    const work = new MixedWorkload(new VideoStore(db), 0x5eed + rep);
    for (let i = warmupOf(plan.stressOps); i > 0; i--) await work.step();
    for (const k of Object.keys(work.counts) as (keyof MixedWorkload["counts"])[]) work.counts[k] = 0;
    const start = performance.now();
    for (let i = 0; i < plan.stressOps; i++) {
      const p = work.step();
      if (p) await p;
    }
    const seconds = (performance.now() - start) / 1000;
    return { opsPerSec: plan.stressOps / seconds, counts: { ...work.counts } };
  } finally {
    await db.close();
  }
}

// ---------------------------------------------------------------- the group

async function run(ctx: BenchContext): Promise<BenchResult> {
  const plan = ctx.quick ? QUICK : FULL;
  const tmp = tempDir("vqd-bench-db-");
  const dbs: Database[] = [];
  try {
    const oursDb = await openDatabase({ file: join(tmp.path, "ours.db"), synchronous: "normal" });
    dbs.push(oursDb);
    const rawDb = await openDatabase({ file: join(tmp.path, "raw.db"), synchronous: "normal" });
    dbs.push(rawDb);
    const store = new VideoStore(oursDb);
    const events = new SqliteEventStore(oursDb);
    const raw = rawSide(rawDb.raw);
    // Read-back of the raw file through the store, for the checks only.
    const rawCheck = new VideoStore(rawDb);

    ctx.log(`db: seeding ${plan.videos} videos in each database`);
    const ids = seed(store, plan.videos);
    seed(rawCheck, plan.videos);
    deepStrictEqual(raw.get(ids[0] as string), rawCheck.get(ids[0] as string), "raw mapping differs from the store's");

    // insert: one event appended to a new stream.
    ctx.log(`db: insert, ${plan.reps} x ${plan.ops} ops each side`);
    const event: NewEvent = {
      type: "VideoEnqueued",
      data: {
        path: "/srv/videos/incoming/bench.mp4",
        pipeline: "default",
        steps: STEPS,
        lane: "normal",
        maxAttempts: 3,
        metadata: { source: "bench" },
        at: "2024-01-01T00:00:00.000Z",
      },
    };
    const insert = await pairedPerOp(
      plan,
      (rep, i) => {
        sink += events.append(`ins-${rep}-${i}`, 0, [event]).nextExpectedVersion;
      },
      (rep, i) => {
        sink += raw.append(`ins-${rep}-${i}`, 0, event).nextExpectedVersion;
      },
    );

    // select: one video by id, mapped to an object.
    ctx.log(`db: select, ${plan.reps} x ${plan.ops} ops each side`);
    const order = shuffled(ids, seededRandom(42));
    const select = await pairedPerOp(
      plan,
      (_rep, i) => {
        sink += store.get(order[i % order.length] as string)?.version ?? 0;
      },
      (_rep, i) => {
        sink += raw.get(order[i % order.length] as string)?.version ?? 0;
      },
    );

    // update: one ChangePriority command on a queued video, lanes alternating.
    ctx.log(`db: update (command), ${plan.reps} x ${plan.ops} ops each side`);
    const queuedIds = ids.filter((_id, i) => i % 4 !== 0);
    const oursLanes: Lane[] = queuedIds.map(() => "normal");
    const rawLanes: Lane[] = queuedIds.map(() => "normal");
    const flip = (lanes: Lane[], k: number): Lane => (lanes[k] = lanes[k] === "normal" ? "high" : "normal");
    const update = await pairedPerOp(
      plan,
      (_rep, i) => {
        const k = i % queuedIds.length;
        sink += store.execute(queuedIds[k] as string, { type: "ChangePriority", lane: flip(oursLanes, k) }).video.version;
      },
      (_rep, i) => {
        const k = i % queuedIds.length;
        sink += raw.changePriority(queuedIds[k] as string, flip(rawLanes, k)).version;
      },
    );
    // Both sides did the same writes: same versions, lanes, and pending outbox.
    const probe = queuedIds[1] as string;
    const a = store.get(probe);
    const b = rawCheck.get(probe);
    deepStrictEqual([a?.version, a?.lane, a?.dispatch], [b?.version, b?.lane, b?.dispatch], "raw update diverged from the store");
    equal(store.pendingOutbox(1_000_000).length, rawCheck.pendingOutbox(1_000_000).length, "raw outbox diverged from the store");

    // bulk: 1,000 videos in one read.
    ctx.log(`db: bulk select, ${plan.bulkReads} reads of ${plan.bulkSize} each side`);
    equal((await store.list({ limit: plan.bulkSize })).length, plan.bulkSize);
    equal(raw.list(plan.bulkSize).length, plan.bulkSize);
    for (let i = 0; i < 2; i++) {
      await store.list({ limit: plan.bulkSize });
      raw.list(plan.bulkSize);
    }
    const bulk = await alternate(
      plan.bulkReads,
      () => msOnce(() => store.list({ limit: plan.bulkSize })),
      () => msOnce(() => raw.list(plan.bulkSize)),
    );

    await Promise.all(dbs.splice(0).map((d) => d.close()));

    // stress: mixed ops on a fresh file, each op its own transaction.
    ctx.log(`db: stress, ${plan.stressReps} x ${plan.stressOps} mixed ops on a fresh file`);
    const stressRuns = [];
    for (let rep = 0; rep < plan.stressReps; rep++) stressRuns.push(await stressOnce(tmp.path, plan, rep));
    const stress = median(stressRuns.map((r) => r.opsPerSec));
    const mix = stressRuns[0]?.counts;

    const figures: Figure[] = [
      {
        key: "db.insert_us",
        label: "insert = append 1 event to a new stream",
        value: insert.ours,
        unit: "us",
        baselineKey: "db.raw_insert_us",
        goal: RATIO_GOAL,
        reference: REFERENCE.insert_us,
      },
      { key: "db.raw_insert_us", value: insert.raw, unit: "us" },
      {
        key: "db.select_us",
        label: "select = video by id, row mapped",
        value: select.ours,
        unit: "us",
        baselineKey: "db.raw_select_us",
        goal: RATIO_GOAL,
        reference: REFERENCE.select_us,
      },
      { key: "db.raw_select_us", value: select.raw, unit: "us" },
      {
        key: "db.update_us",
        label: "update = one command: load, append, update read model, outbox",
        value: update.ours,
        unit: "us",
        baselineKey: "db.raw_update_us",
        goal: RATIO_GOAL,
        reference: REFERENCE.update_us,
      },
      { key: "db.raw_update_us", value: update.raw, unit: "us" },
      {
        key: "db.bulk_select_ms",
        label: `bulk = list ${plan.bulkSize} videos (Kysely async)`,
        value: median(bulk.a),
        unit: "ms",
        baselineKey: "db.raw_bulk_select_ms",
        goal: RATIO_GOAL,
        reference: REFERENCE.bulk_select_ms,
      },
      { key: "db.raw_bulk_select_ms", value: median(bulk.b), unit: "ms" },
      {
        key: "db.stress_ops_s",
        label: `stress = ${plan.stressOps.toLocaleString("en-US")} mixed ops, 1 tx each`,
        value: stress,
        unit: "ops/s",
        goal: STRESS_GOAL,
        reference: REFERENCE.stress_ops_s,
      },
    ];
    const notes = [
      `baseline = hand-written better-sqlite3 statements, same SQL and JSON work, on a second file opened by openDatabase (WAL, synchronous=NORMAL)`,
      `per-op: median of ${plan.reps} alternating reps x ${plan.ops.toLocaleString("en-US")} ops after ${warmupOf(plan.ops).toLocaleString("en-US")} warm-up ops; bulk: median of ${plan.bulkReads} reads`,
      `update = ChangePriority on a queued video: SELECT video, INSERT event, UPDATE video row, UPDATE outbox (supersede), INSERT outbox; ` +
        `like the store it takes the stream version from the loaded row (no version SELECT). The reference's 6 us UPDATE is a single statement`,
      `stress: median of ${plan.stressReps} fresh files; mix of the first: ${mix ? Object.entries(mix).map(([k, n]) => `${k} ${n}`).join(", ") : "-"}`,
    ];
    if (sink === -1) notes.push("(unreachable)");
    return { figures, notes };
  } finally {
    await Promise.all(dbs.map((d) => d.close()));
    tmp.remove();
  }
}

export const dbGroup: BenchGroup = {
  name: "db",
  description: "data layer (src/store) vs raw better-sqlite3, same run",
  run,
};
