/**
 * VideoStore: commands against a real SQLite file, with the `videos` read model and the outbox
 * checked at each step; projections rebuilt from the log; hostile values stored verbatim;
 * list/counts; refused commands leave no trace.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  DomainError,
  IllegalTransitionError,
  StaleJobError,
  VideoExistsError,
  VideoNotFoundError,
  replay,
  type Lane,
  type VideoCommand,
  type VideoEvent,
} from "../../src/domain/index.js";
import { VideoStore, jobMessageId, type CommandItem, type OutboxEntry } from "../../src/store/index.js";
import { STEPS, cancel, complete, count, dump, enqueue, fail, freshDb, manualClock, priority, redeliver, retry, start } from "./fixtures.js";

interface OutboxRow {
  id: number;
  video_id: string;
  dispatch: number;
  lane: string;
  msg_id: string;
  available_at: number;
  created_at: string;
  sent_at: string | null;
  stream_seq: number | null;
  publish_attempts: number;
  last_error: string | null;
}

const outboxOf = (store: VideoStore, videoId: string): OutboxRow[] =>
  store.database.raw.prepare("SELECT * FROM outbox WHERE video_id = ? ORDER BY id").all(videoId) as OutboxRow[];

const pendingFor = (store: VideoStore, videoId: string, now?: number): OutboxEntry[] =>
  store.pendingOutbox(1000, now).filter((e) => e.videoId === videoId);

describe("lifecycle and outbox", () => {
  it("enqueue, publish, retry with backoff, publish again, complete", async () => {
    const clock = manualClock();
    const { db } = await freshDb();
    const store = new VideoStore(db, { now: clock.now });
    const t0 = clock.ms();

    const enq = store.execute("life", enqueue({ lane: "high" }));
    assert.equal(enq.video.state, "queued");
    assert.equal(enq.video.dispatch, 1);
    let pending = store.pendingOutbox(10);
    assert.equal(pending.length, 1);
    const first = pending[0]!;
    assert.deepEqual(first, { id: first.id, videoId: "life", dispatch: 1, lane: "high", msgId: "life.1", availableAt: t0, traceparent: null });
    assert.equal(jobMessageId("life", 1), first.msgId);
    assert.equal(store.nextOutboxAt(), t0);

    clock.advance(5);
    store.markOutboxSent([{ id: first.id, seq: 11 }]);
    assert.deepEqual(store.pendingOutbox(10), []);
    assert.equal(store.nextOutboxAt(), null);
    assert.deepEqual(
      outboxOf(store, "life").map((r) => [r.msg_id, r.sent_at, r.stream_seq, r.publish_attempts, r.last_error]),
      [["life.1", new Date(t0 + 5).toISOString(), 11, 1, null]],
    );

    clock.advance(1_000);
    store.execute("life", start(1));
    store.execute("life", complete(1, 0, "probe"));
    const failAt = clock.ms();
    const failed = store.execute("life", fail(1, { index: 1, step: "transcode" }));
    assert.equal(failed.video.state, "retrying");
    assert.equal(failed.video.dispatch, 2);
    const notBefore = failAt + 10_000; // NO_JITTER: initialMs after the first failed attempt
    assert.equal(failed.video.notBefore, new Date(notBefore).toISOString());

    const rows = outboxOf(store, "life");
    assert.equal(rows.length, 2);
    assert.deepEqual(
      [rows[1]!.msg_id, rows[1]!.dispatch, rows[1]!.lane, rows[1]!.available_at, rows[1]!.sent_at],
      ["life.2", 2, "high", notBefore, null],
    );
    // Not due yet: not handed out before notBefore, neither by the store's clock nor an explicit time.
    assert.deepEqual(store.pendingOutbox(10), []);
    assert.deepEqual(store.pendingOutbox(10, notBefore - 1), []);
    assert.equal(store.nextOutboxAt(), notBefore);
    clock.advance(9_999);
    assert.deepEqual(store.pendingOutbox(10), []);
    clock.set(notBefore);
    pending = store.pendingOutbox(10);
    assert.deepEqual(
      pending.map((e) => [e.msgId, e.dispatch, e.lane, e.availableAt]),
      [["life.2", 2, "high", notBefore]],
    );

    // A failed publish leaves the row pending and counts the attempt.
    store.markOutboxFailed(pending[0]!.id, "nats: timeout");
    assert.equal(store.pendingOutbox(10).length, 1);
    let row = outboxOf(store, "life")[1]!;
    assert.deepEqual([row.publish_attempts, row.last_error, row.sent_at, row.stream_seq], [1, "nats: timeout", null, null]);
    clock.advance(1);
    store.markOutboxSent([{ id: pending[0]!.id, seq: 12 }]);
    row = outboxOf(store, "life")[1]!;
    assert.deepEqual([row.publish_attempts, row.last_error, row.sent_at, row.stream_seq], [2, null, new Date(notBefore + 1).toISOString(), 12]);
    assert.deepEqual(store.pendingOutbox(10), []);

    store.execute("life", start(2));
    store.execute("life", complete(2, 1, "transcode"));
    const done = store.execute("life", complete(2, 2, "thumbnail"));
    assert.equal(done.video.state, "completed");
    assert.equal(done.video.attempts, 2);
    assert.equal(outboxOf(store, "life").length, 2, "running and completing publish nothing");
    assert.deepEqual(
      store.timeline("life").map((e) => e.type),
      ["VideoEnqueued", "AttemptStarted", "StepCompleted", "AttemptFailed", "RetryScheduled", "AttemptStarted", "StepCompleted", "StepCompleted", "VideoCompleted"],
    );
    assert.deepEqual(store.get("life"), done.video);
  });

  it("ChangePriority on a queued video supersedes the unsent row and adds one in the new lane", async () => {
    const clock = manualClock();
    const { db } = await freshDb();
    const store = new VideoStore(db, { now: clock.now });

    store.execute("prio", enqueue({ lane: "normal" }));
    assert.deepEqual(
      pendingFor(store, "prio").map((e) => [e.msgId, e.lane]),
      [["prio.1", "normal"]],
    );
    clock.advance(10);
    const changed = store.execute("prio", priority("high"));
    assert.equal(changed.video.dispatch, 2);
    assert.equal(changed.video.lane, "high");
    assert.deepEqual(
      pendingFor(store, "prio").map((e) => [e.msgId, e.dispatch, e.lane, e.availableAt]),
      [["prio.2", 2, "high", clock.ms()]],
    );
    assert.deepEqual(
      outboxOf(store, "prio").map((r) => [r.msg_id, r.lane, r.sent_at, r.last_error]),
      [
        ["prio.1", "normal", clock.now().toISOString(), "superseded"],
        ["prio.2", "high", null, null],
      ],
    );

    // Once more, to low: only the latest dispatch stays pending.
    store.execute("prio", priority("low"));
    assert.deepEqual(
      pendingFor(store, "prio").map((e) => [e.msgId, e.lane]),
      [["prio.3", "low"]],
    );

    // A row already sent keeps its sent_at and gets no "superseded" mark.
    store.execute("sent", enqueue({ lane: "low" }));
    const sentRow = pendingFor(store, "sent")[0]!;
    store.markOutboxSent([{ id: sentRow.id, seq: 1 }]);
    const sentAt = outboxOf(store, "sent")[0]!.sent_at;
    clock.advance(10);
    store.execute("sent", priority("high"));
    assert.deepEqual(
      outboxOf(store, "sent").map((r) => [r.msg_id, r.lane, r.sent_at, r.last_error]),
      [
        ["sent.1", "low", sentAt, null],
        ["sent.2", "high", null, null],
      ],
    );

    // A running video keeps its message: new lane, same dispatch, nothing published.
    store.execute("prio", start(3));
    const rowsBefore = outboxOf(store, "prio");
    const moved = store.execute("prio", priority("high"));
    assert.equal(moved.video.lane, "high");
    assert.equal(moved.video.dispatch, 3);
    assert.deepEqual(outboxOf(store, "prio"), rowsBefore);
  });

  it("cancelling a waiting video supersedes its unsent row (queued, and retrying with a future row)", async () => {
    const clock = manualClock();
    const { db } = await freshDb();
    const store = new VideoStore(db, { now: clock.now });

    store.execute("gone", enqueue());
    assert.equal(pendingFor(store, "gone").length, 1);
    clock.advance(3);
    store.execute("gone", cancel("operator"));
    assert.deepEqual(pendingFor(store, "gone"), []);
    assert.deepEqual(
      outboxOf(store, "gone").map((r) => [r.msg_id, r.sent_at, r.last_error]),
      [["gone.1", clock.now().toISOString(), "superseded"]],
    );

    store.execute("later", enqueue());
    store.markOutboxSent(pendingFor(store, "later").map((e, i) => ({ id: e.id, seq: 100 + i })));
    store.execute("later", start(1));
    const failed = store.execute("later", fail(1));
    const due = Date.parse(failed.video.notBefore!);
    assert.equal(store.nextOutboxAt(), due);
    store.execute("later", cancel());
    assert.deepEqual(pendingFor(store, "later", due + 1_000_000), []);
    assert.equal(store.nextOutboxAt(), null);
    assert.deepEqual(
      outboxOf(store, "later").map((r) => [r.msg_id, r.last_error]),
      [
        ["later.1", null],
        ["later.2", "superseded"],
      ],
    );

    // Cancelling a running video has nothing to supersede.
    store.execute("run", enqueue());
    const runRow = pendingFor(store, "run")[0]!;
    store.markOutboxSent([{ id: runRow.id, seq: 1 }]);
    store.execute("run", start(1));
    const before = outboxOf(store, "run");
    store.execute("run", cancel());
    assert.deepEqual(outboxOf(store, "run"), before);
  });

  it("an operator retry of a dead video publishes a new dispatch, resuming where it failed", async () => {
    const clock = manualClock();
    const { db } = await freshDb();
    const store = new VideoStore(db, { now: clock.now });
    store.execute("dead", enqueue());
    store.execute("dead", start(1));
    store.execute("dead", complete(1, 0, "probe"));
    const dead = store.execute("dead", fail(1, { index: 1, step: "transcode", retryable: false }));
    assert.equal(dead.video.state, "dead");
    assert.equal(outboxOf(store, "dead").length, 1);
    clock.advance(60_000);
    const again = store.execute("dead", retry());
    assert.equal(again.video.state, "queued");
    assert.deepEqual(
      pendingFor(store, "dead").map((e) => [e.msgId, e.dispatch, e.availableAt]),
      [["dead.2", 2, clock.ms()]],
    );
    store.execute("dead", start(2));
    store.execute("dead", complete(1, 1, "transcode"));
    assert.equal(store.execute("dead", complete(1, 2, "thumbnail")).video.state, "completed");
  });
});

// --- projections rebuild ----------------------------------------------------------------------

/** Small deterministic PRNG (mulberry32), so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LANE_LIST: readonly Lane[] = ["high", "normal", "low"];

/** The command script of one video, by kind; each one is valid at its point in the history. */
function script(kind: number, rand: () => number): VideoCommand[] {
  const lane = LANE_LIST[Math.floor(rand() * 3)]!;
  const other = LANE_LIST.find((l) => l !== lane)!;
  const all = (attempt: number, from = 0) => STEPS.slice(from).map((s, k) => complete(attempt, from + k, s, { file: `/out/${s}`, r: rand() }));
  const base = enqueue({ lane, metadata: { kind: String(kind) } });
  switch (kind) {
    case 0: // completed first time
      return [base, start(1), ...all(1)];
    case 1: // dead: not retryable
      return [base, start(1), fail(1, { retryable: false })];
    case 2: // dead after step 0, redriven, completed from step 1
      return [base, start(1), complete(1, 0, "probe"), fail(1, { index: 1, step: "transcode", retryable: false }), retry(), start(2), ...all(1, 1)];
    case 3: // cancelled while queued
      return [base, cancel("no longer needed")];
    case 4: // cancelled while running
      return [base, start(1), complete(1, 0, "probe"), cancel("operator")];
    case 5: // cancelled while retrying
      return [base, start(1), fail(1, { random: rand() }), cancel()];
    case 6: // priority changed while queued, then completed
      return [base, priority(other), start(2), ...all(1)];
    case 7: // priority changed while running (same dispatch), left running mid-way
      return [base, start(1), priority(other), complete(1, 0, "probe")];
    case 8: // running mid-way
      return [base, start(1), complete(1, 0, "probe"), complete(1, 1, "transcode")];
    case 9: // retried, then completed on the second attempt
      return [base, start(1), complete(1, 0, "probe"), fail(1, { index: 1, step: "transcode", random: rand() }), start(2), ...all(2, 1)];
    case 10: // retries exhausted: dead after two attempts
      return [enqueue({ lane, maxAttempts: 2 }), start(1), fail(1), start(2), fail(2)];
    case 11: // still retrying
      return [base, start(1), fail(1, { random: rand() })];
    case 12: // redelivered to a second worker while running, then completed by it
      return [base, start(1, "w1"), redeliver(1, "w2"), ...all(2)];
    default: // just queued
      return [base];
  }
}

describe("projections", () => {
  it("rebuildProjections() reproduces the videos table row for row over ~300 mixed histories", async () => {
    const clock = manualClock();
    const { db } = await freshDb();
    const store = new VideoStore(db, { now: clock.now });
    const rand = prng(20250301);

    const queues = new Map<string, VideoCommand[]>();
    for (let i = 0; i < 300; i++) queues.set(`v-${String(i).padStart(4, "0")}`, script(i % 14, rand));

    // Interleave the videos' scripts: random video, sometimes a batch of several.
    let batches = 0;
    while (queues.size > 0) {
      clock.advance(1 + Math.floor(rand() * 5_000));
      const ids = [...queues.keys()];
      const take = rand() < 0.3 ? 1 + Math.floor(rand() * 5) : 1;
      const items: CommandItem[] = [];
      const picked = new Set<string>();
      for (let k = 0; k < take; k++) {
        const id = ids[Math.floor(rand() * ids.length)]!;
        if (picked.has(id)) continue;
        picked.add(id);
        const q = queues.get(id)!;
        items.push({ videoId: id, command: q.shift()!, metadata: { batch: batches } });
        if (q.length === 0) queues.delete(id);
      }
      if (items.length === 1) {
        store.execute(items[0]!.videoId, items[0]!.command, items[0]!.metadata);
      } else {
        const results = store.executeMany(items);
        for (const r of results) assert.ok(r.ok, r.ok ? "" : r.error.message);
      }
      batches++;
    }

    const counts = await store.counts();
    for (const state of ["queued", "running", "retrying", "completed", "dead", "cancelled"] as const) {
      assert.ok(counts.byState[state] > 0, `the mix has ${state} videos`);
    }
    assert.equal(counts.total, 300);

    const videosBefore = dump(db, "videos");
    const outboxBefore = dump(db, "outbox");
    const result = store.rebuildProjections();
    assert.deepEqual(result, { videos: 300, events: count(db, "events") });
    assert.deepEqual(dump(db, "videos"), videosBefore);
    assert.deepEqual(dump(db, "outbox"), outboxBefore, "the outbox is not a projection and is left alone");

    // And the read model agrees with a plain replay of each stream.
    for (const id of ["v-0000", "v-0002", "v-0005", "v-0007", "v-0012"]) {
      const events = store.timeline(id).map((e) => ({ type: e.type, data: e.data }) as VideoEvent);
      assert.deepEqual(store.get(id), replay(id, events));
    }
    // Rebuilding twice is the same as once.
    store.rebuildProjections();
    assert.deepEqual(dump(db, "videos"), videosBefore);
  });
});

// --- hostile values ---------------------------------------------------------------------------

describe("hostile values", () => {
  it("paths, ids, metadata and outputs with quotes, SQL, unicode, long names and NUL bytes are stored verbatim", async () => {
    const { db } = await freshDb();
    const store = new VideoStore(db);
    const longName = "ñ".repeat(400) + "x".repeat(596) + ".mkv"; // 1,000 characters
    assert.equal(longName.length, 1000);
    const sql = "'; DROP TABLE events; --";
    const texts = {
      quotes: `it's "quoted" \`back\` \\back\\slash`,
      sql,
      sql2: `"); DELETE FROM videos WHERE ("1"="1`,
      emoji: "🎬🎥 👩‍👩‍👧‍👦 🇫🇷 🏳️‍🌈",
      rtl: "\u202eمرحبا بالعالم\u202c עברית",
      combining: "e\u0301 a\u0308 Z\u0351\u0352\u0353\u0354 \u1100\u1161\u11a8",
      nul: "before\u0000middle\u0000",
      placeholder: "\u0000vqd:param:id",
      controls: "tab\tnewline\nreturn\r\u0007\u001b[31m",
      json: '{"a":1}\\u0000',
      long: longName,
    };
    const videos = [
      { id: "plain", path: `/in/${texts.quotes}/${sql}/${texts.emoji}/${texts.rtl}/${texts.combining}/${longName}` },
      { id: `vid'; DROP TABLE videos; --`, path: `/in/${sql}.mp4` },
      { id: "🎬-ünïcödé-\u05d0", path: `/in/${texts.nul}.mp4` },
      { id: "placeholder", path: texts.placeholder },
    ];
    for (const v of videos) {
      const metadata = { ...texts, [sql]: sql, ["key\u0000nul"]: "v", "": "empty key" };
      const commandMeta = { who: texts.rtl, why: sql, nul: texts.nul };
      store.execute(v.id, enqueue({ path: v.path, metadata, steps: ["probe"] }), commandMeta);
      store.execute(v.id, start(1, texts.emoji));
      store.execute(v.id, complete(1, 0, "probe", { path: v.path, note: texts.nul, [texts.sql2]: [texts.combining] }));

      const got = store.get(v.id);
      assert.ok(got, `video ${JSON.stringify(v.id)} reads back`);
      assert.equal(got.id, v.id);
      assert.equal(got.path, v.path);
      assert.deepEqual(got.metadata, metadata);
      assert.deepEqual(got.completedSteps[0]?.outputs, { path: v.path, note: texts.nul, [texts.sql2]: [texts.combining] });
      const timeline = store.timeline(v.id);
      assert.deepEqual(
        timeline.map((e) => e.type),
        ["VideoEnqueued", "AttemptStarted", "StepCompleted", "VideoCompleted"],
      );
      const data = timeline[0]!.data as { path: string; metadata: Record<string, string> };
      assert.equal(data.path, v.path);
      assert.deepEqual(data.metadata, metadata);
      assert.deepEqual(timeline[0]!.metadata, commandMeta);
      assert.equal((timeline[1]!.data as { worker: string }).worker, texts.emoji);
      assert.equal(timeline[0]!.streamId, v.id);
    }
    // list() binds its values too.
    assert.deepEqual(
      (await store.list({ afterId: texts.placeholder })).map((v) => v.id).sort(),
      videos.map((v) => v.id).sort(),
    );
    // The tables are all still there, and a rebuild (which parses everything back) agrees.
    const tables = (db.raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    for (const t of ["events", "outbox", "videos"]) assert.ok(tables.includes(t), `${t} still exists`);
    assert.equal(count(db, "events"), 16);
    const before = dump(db, "videos");
    store.rebuildProjections();
    assert.deepEqual(dump(db, "videos"), before);
  });
});

// --- list and counts --------------------------------------------------------------------------

describe("list and counts", () => {
  it("list filters by state and lane, pages with limit/afterId; counts() by state and waiting by lane", async () => {
    const clock = manualClock();
    const { db } = await freshDb();
    const store = new VideoStore(db, { now: clock.now });
    let n = 0;
    const make = (lane: Lane, to: "queued" | "running" | "retrying" | "completed" | "dead" | "cancelled"): string => {
      const id = `v-${String(n++).padStart(4, "0")}`;
      clock.advance(1_000);
      store.execute(id, enqueue({ lane, steps: ["probe"] }));
      if (to === "cancelled") store.execute(id, cancel());
      if (to === "running" || to === "retrying" || to === "completed" || to === "dead") store.execute(id, start(1));
      if (to === "retrying") store.execute(id, fail(1));
      if (to === "dead") store.execute(id, fail(1, { retryable: false }));
      if (to === "completed") store.execute(id, complete(1, 0, "probe"));
      return id;
    };
    const plan: [Lane, Parameters<typeof make>[1], number][] = [
      ["high", "queued", 2],
      ["normal", "queued", 3],
      ["low", "queued", 1],
      ["normal", "retrying", 2],
      ["low", "retrying", 1],
      ["high", "running", 1],
      ["normal", "completed", 2],
      ["low", "dead", 1],
      ["high", "cancelled", 1],
    ];
    const byId = new Map<string, { lane: Lane; state: string }>();
    // Interleave the plan so ids of one state are not contiguous.
    const remaining = plan.map(([lane, state, k]) => ({ lane, state, k }));
    while (remaining.some((p) => p.k > 0)) {
      for (const p of remaining) {
        if (p.k === 0) continue;
        p.k--;
        byId.set(make(p.lane, p.state), { lane: p.lane, state: p.state });
      }
    }
    const ids = [...byId.keys()];
    const expect = (f: (v: { lane: Lane; state: string }) => boolean) => ids.filter((id) => f(byId.get(id)!));

    assert.deepEqual(
      (await store.list()).map((v) => v.id),
      ids,
    );
    assert.deepEqual(
      (await store.list({ state: "queued" })).map((v) => v.id),
      expect((v) => v.state === "queued"),
    );
    assert.deepEqual(
      (await store.list({ lane: "high" })).map((v) => v.id),
      expect((v) => v.lane === "high"),
    );
    assert.deepEqual(
      (await store.list({ state: "retrying", lane: "normal" })).map((v) => v.id),
      expect((v) => v.state === "retrying" && v.lane === "normal"),
    );
    assert.deepEqual(await store.list({ state: "dead", lane: "high" }), []);
    for (const v of await store.list({ state: "completed" })) assert.deepEqual(v, store.get(v.id));

    // Paging: limit + afterId walk every video exactly once, in id order.
    const paged: string[] = [];
    let afterId: string | undefined;
    for (;;) {
      const page = await store.list({ limit: 4, ...(afterId ? { afterId } : {}) });
      assert.ok(page.length <= 4);
      if (page.length === 0) break;
      paged.push(...page.map((v) => v.id));
      afterId = page[page.length - 1]!.id;
    }
    assert.deepEqual(paged, ids);
    // Paging within a filter.
    const q1 = await store.list({ state: "queued", limit: 2 });
    const q2 = await store.list({ state: "queued", limit: 2, afterId: q1[1]!.id });
    assert.deepEqual([...q1, ...q2].map((v) => v.id).slice(0, 4), expect((v) => v.state === "queued").slice(0, 4));

    const counts = await store.counts();
    assert.deepEqual(counts.byState, { queued: 6, running: 1, retrying: 3, completed: 2, dead: 1, cancelled: 1 });
    assert.deepEqual(counts.waitingByLane, { high: 2, normal: 5, low: 2 });
    assert.equal(counts.total, 14);

    // The default limit is 100.
    for (let i = 0; i < 100; i++) store.execute(`w-${String(i).padStart(4, "0")}`, enqueue());
    assert.equal((await store.list()).length, 100);
    assert.equal((await store.counts()).total, 114);
  });

  it("counts() of an empty store is all zeros", async () => {
    const { db } = await freshDb();
    const store = new VideoStore(db);
    assert.deepEqual(await store.counts(), {
      byState: { queued: 0, running: 0, retrying: 0, completed: 0, dead: 0, cancelled: 0 },
      waitingByLane: { high: 0, normal: 0, low: 0 },
      total: 0,
    });
    assert.deepEqual(await store.list(), []);
  });
});

// --- refusals ---------------------------------------------------------------------------------

describe("refused commands", () => {
  it("append nothing: version, events, videos row and outbox unchanged", async () => {
    const { db } = await freshDb();
    const store = new VideoStore(db);
    store.execute("queued", enqueue({ lane: "normal" }));
    store.execute("running", enqueue());
    store.execute("running", start(1));
    store.execute("done", enqueue({ steps: ["probe"] }));
    store.execute("done", start(1));
    store.execute("done", complete(1, 0, "probe"));

    const cases: [string, VideoCommand, new (...args: never[]) => DomainError][] = [
      ["queued", enqueue(), VideoExistsError],
      ["queued", priority("normal"), IllegalTransitionError],
      ["queued", retry(), IllegalTransitionError],
      ["queued", complete(0, 0, "probe"), IllegalTransitionError],
      ["queued", start(7), StaleJobError],
      ["running", start(2), StaleJobError],
      ["running", start(1), StaleJobError], // a plain duplicate of the running job's message
      ["running", complete(1, 1, "transcode"), StaleJobError],
      ["running", complete(2, 0, "probe"), StaleJobError],
      ["running", fail(5), StaleJobError],
      ["done", cancel(), IllegalTransitionError],
      ["done", priority("high"), IllegalTransitionError],
      ["done", start(1), StaleJobError],
      ["done", retry(), IllegalTransitionError],
      ["missing", cancel(), VideoNotFoundError],
      ["missing", start(1), VideoNotFoundError],
      ["new-empty", enqueue({ steps: [] }), IllegalTransitionError],
    ];
    for (const [id, command, errorClass] of cases) {
      const before = { events: dump(db, "events"), videos: dump(db, "videos"), outbox: dump(db, "outbox") };
      const video = store.get(id);
      assert.throws(
        () => store.execute(id, command),
        (err: unknown) => err instanceof errorClass,
        `${command.type} on ${id} should be refused with ${errorClass.name}`,
      );
      assert.deepEqual(store.get(id), video, `${command.type} on ${id}: the video is unchanged`);
      assert.equal(store.events.streamVersion(id), video?.version ?? 0);
      assert.deepEqual({ events: dump(db, "events"), videos: dump(db, "videos"), outbox: dump(db, "outbox") }, before, `${command.type} on ${id} wrote something`);
    }
    assert.equal(store.get("missing"), null);
    assert.equal(store.get("new-empty"), null);

    // The same refusals inside a batch: reported per slot, nothing written for them.
    const before = { events: dump(db, "events"), videos: dump(db, "videos"), outbox: dump(db, "outbox") };
    const results = store.executeMany(cases.map(([videoId, command]) => ({ videoId, command })));
    assert.ok(results.every((r) => !r.ok));
    assert.deepEqual({ events: dump(db, "events"), videos: dump(db, "videos"), outbox: dump(db, "outbox") }, before);
  });
});
