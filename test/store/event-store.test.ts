/**
 * The SQLite event store against real database files: optimistic concurrency (in one process,
 * across connections and across processes), idempotent appends, reads, transactional rollback
 * with the video read model and the outbox, durability across reopen and kill -9, and the
 * database-level guards (one completion per video, a corrupt file is refused).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { openSync, closeSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import BetterSqlite3 from "better-sqlite3";

import { DomainError, IllegalTransitionError } from "../../src/domain/index.js";
import {
  ConcurrencyError,
  SqliteEventStore,
  StoreError,
  VideoStore,
  openDatabase,
  type NewEvent,
  type StoredEvent,
} from "../../src/store/index.js";
import {
  cancel,
  complete,
  count,
  dump,
  enqueue,
  exited,
  freshDb,
  lines,
  openDb,
  scratchDir,
  spawnScript,
  start,
} from "./fixtures.js";

const tick = (n: number, extra: Partial<NewEvent> = {}): NewEvent => ({ type: "Tick", data: { n }, ...extra });

describe("append and optimistic concurrency", () => {
  it("appends to a new stream with expected version 0", async () => {
    const { db } = await freshDb();
    const store = new SqliteEventStore(db, { now: () => new Date("2025-03-01T12:00:00.000Z") });
    const r = store.append("s-1", 0, [tick(1), tick(2, { metadata: { by: "test" } })]);
    assert.equal(r.duplicate, false);
    assert.equal(r.nextExpectedVersion, 2);
    assert.deepEqual(
      r.events.map((e) => [e.streamId, e.streamVersion, e.type, e.data, e.metadata, e.recordedAt]),
      [
        ["s-1", 1, "Tick", { n: 1 }, {}, "2025-03-01T12:00:00.000Z"],
        ["s-1", 2, "Tick", { n: 2 }, { by: "test" }, "2025-03-01T12:00:00.000Z"],
      ],
    );
    assert.ok(r.events[0] && r.events[1] && r.events[0].position < r.events[1].position);
    // What append() returned is what a read gives back.
    assert.deepEqual(store.readStream("s-1"), r.events);
    assert.equal(store.streamVersion("s-1"), 2);
    assert.equal(store.streamVersion("nope"), 0);
  });

  it("appends with the right expected version", async () => {
    const { db } = await freshDb();
    const store = new SqliteEventStore(db);
    store.append("s", 0, [tick(1)]);
    const r = store.append("s", 1, [tick(2), tick(3)]);
    assert.equal(r.nextExpectedVersion, 3);
    assert.deepEqual(
      store.readStream("s").map((e) => e.streamVersion),
      [1, 2, 3],
    );
    // "any" skips the check.
    assert.equal(store.append("s", "any", [tick(4)]).nextExpectedVersion, 4);
  });

  it("refuses a wrong expected version with a ConcurrencyError naming both versions, and writes nothing", async () => {
    const { db } = await freshDb();
    const store = new SqliteEventStore(db);
    store.append("s", 0, [tick(1), tick(2)]);
    const before = dump(db, "events");

    for (const expected of [0, 1, 3, 7]) {
      let caught: unknown;
      try {
        store.append("s", expected, [tick(99), tick(100)]);
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof ConcurrencyError, `expected ${expected}: got ${String(caught)}`);
      assert.equal(caught.name, "ConcurrencyError");
      assert.equal(caught.streamId, "s");
      assert.equal(caught.expectedVersion, expected);
      assert.equal(caught.currentVersion, 2);
      assert.match(caught.message, new RegExp(`expected version ${expected}\\b`));
      assert.match(caught.message, /current version is 2\b/);
      assert.match(caught.message, /\bs\b/);
    }
    // Expecting a new stream when there is one is the same conflict.
    assert.throws(() => store.append("s", 0, [tick(1)]), ConcurrencyError);
    assert.deepEqual(dump(db, "events"), before);
    assert.equal(store.streamVersion("s"), 2);
  });

  it("two connections to one file: both read version N, exactly one append with expected N wins", async () => {
    const { db: a, file } = await freshDb();
    const b = await openDb(file);
    const sa = new SqliteEventStore(a);
    const sb = new SqliteEventStore(b);
    sa.append("race", 0, [tick(1), tick(2), tick(3)]);

    for (let round = 0; round < 20; round++) {
      const va = sa.streamVersion("race");
      const vb = sb.streamVersion("race");
      assert.equal(va, vb, "both connections see the same committed version");
      // Alternate who goes first so neither connection is special.
      const [first, second] = round % 2 === 0 ? [sa, sb] : [sb, sa];
      const outcomes = [first, second].map((s, i) => {
        try {
          s.append("race", va, [tick(100 * round + i)]);
          return "ok";
        } catch (err) {
          assert.ok(err instanceof ConcurrencyError, String(err));
          assert.equal(err.expectedVersion, va);
          assert.equal(err.currentVersion, va + 1);
          return "conflict";
        }
      });
      assert.deepEqual(outcomes, ["ok", "conflict"]);
    }
    const versions = sa.readStream("race").map((e) => e.streamVersion);
    assert.deepEqual(versions, Array.from({ length: 23 }, (_, i) => i + 1));
    assert.deepEqual(sb.readStream("race"), sa.readStream("race"));
  });

  it("two processes appending to one stream with expected versions: versions 1..N, no gaps, no duplicates", async (t) => {
    const { db, file, dir } = await freshDb();
    const store = new SqliteEventStore(db);
    // Each side keeps appending (re-reading the version after a conflict) until it has won EACH
    // appends, so the stream must end at exactly N = 2 * EACH.
    const EACH = 300;
    const TARGET = 2 * EACH;
    const child = spawnScript(
      dir,
      "racer.mjs",
      `
      import { openDatabase, SqliteEventStore, isConcurrencyError } from STORE_URL;
      const [file, target] = process.argv.slice(2);
      const db = await openDatabase({ file });
      const store = new SqliteEventStore(db);
      process.stdout.write("ready\\n");
      await new Promise((resolve) => process.stdin.once("data", resolve));
      process.stdin.destroy();
      let successes = 0;
      let conflicts = 0;
      while (successes < Number(target)) {
        const v = store.streamVersion("race");
        try {
          store.append("race", v, [{ type: "Tick", data: { by: "child", v: v + 1 } }]);
          successes++;
        } catch (err) {
          if (!isConcurrencyError(err)) throw err;
          conflicts++;
        }
      }
      await db.close();
      process.stdout.write(JSON.stringify({ successes, conflicts }) + "\\n");
      `,
      [file, String(EACH)],
    );
    let childResult: { successes: number; conflicts: number } | undefined;
    const ready = new Promise<void>((resolve) => {
      const out = lines(child, (line) => {
        if (line === "ready") resolve();
        else childResult = JSON.parse(line) as { successes: number; conflicts: number };
      });
      child.once("exit", () => {
        if (!childResult) resolve(); // let the assertions below report the failure
        if (out.stderr()) console.error(out.stderr());
      });
    });
    const done = exited(child);
    await ready;
    child.stdin.write("go\n");

    let successes = 0;
    let conflicts = 0;
    while (successes < EACH) {
      const v = store.streamVersion("race");
      try {
        store.append("race", v, [{ type: "Tick", data: { by: "parent", v: v + 1 } }]);
        successes++;
      } catch (err) {
        assert.ok(err instanceof ConcurrencyError, String(err));
        conflicts++;
      }
    }
    const { code } = await done;
    assert.equal(code, 0, "the child process failed");
    assert.ok(childResult, "the child reported its counts");

    const events = store.readStream("race");
    assert.deepEqual(
      events.map((e) => e.streamVersion),
      Array.from({ length: TARGET }, (_, i) => i + 1),
      "versions are 1..N with no gaps and no duplicates",
    );
    assert.equal(new Set(events.map((e) => e.eventId)).size, TARGET);
    assert.equal(new Set(events.map((e) => e.position)).size, TARGET);
    // Each writer saw the version it wrote: the event's own payload names it.
    for (const e of events) assert.equal((e.data as { v: number }).v, e.streamVersion);
    assert.equal(successes + childResult.successes, TARGET, "the count of successful appends equals N");
    assert.equal(events.filter((e) => (e.data as { by: string }).by === "parent").length, successes);
    assert.equal(events.filter((e) => (e.data as { by: string }).by === "child").length, childResult.successes);
    assert.equal(childResult.successes, EACH);
    // How often each side lost depends on scheduling; only log it.
    t.diagnostic(`appenders: parent lost ${conflicts} race(s), child lost ${childResult.conflicts}`);
    assert.equal(count(db, "events"), TARGET);
  });
});

describe("idempotent appends", () => {
  it("re-appending the same event id is a no-op: duplicate, no new row, same position", async () => {
    const { db } = await freshDb();
    const store = new SqliteEventStore(db);
    const first = store.append("s", 0, [tick(1, { eventId: "evt-1" }), tick(2, { eventId: "evt-2" })]);
    assert.equal(first.duplicate, false);
    const rows = dump(db, "events");

    // Same ids again, with the now-stale expected version: it happened already, not a conflict.
    const again = store.append("s", 0, [tick(1, { eventId: "evt-1" }), tick(2, { eventId: "evt-2" })]);
    assert.equal(again.duplicate, true);
    assert.equal(again.nextExpectedVersion, 2);
    assert.deepEqual(
      again.events.map((e) => [e.eventId, e.position, e.streamVersion]),
      first.events.map((e) => [e.eventId, e.position, e.streamVersion]),
    );
    assert.deepEqual(dump(db, "events"), rows);

    // And with the current expected version too.
    assert.equal(store.append("s", 2, [tick(1, { eventId: "evt-1" })]).duplicate, true);
    assert.deepEqual(dump(db, "events"), rows);
    assert.equal(store.streamVersion("s"), 2);
  });

  it("the same event id on a different stream is an error and writes nothing", async () => {
    const { db } = await freshDb();
    const store = new SqliteEventStore(db);
    store.append("s", 0, [tick(1, { eventId: "evt-1" })]);
    const rows = dump(db, "events");
    assert.throws(() => store.append("other", 0, [tick(1, { eventId: "evt-1" })]), ConcurrencyError);
    assert.throws(() => store.append("other", "any", [tick(1, { eventId: "evt-1" })]), ConcurrencyError);
    assert.deepEqual(dump(db, "events"), rows);
    assert.equal(store.streamVersion("other"), 0);
  });
});

describe("reads", () => {
  it("readStream returns one stream in version order with its data intact", async () => {
    const { db } = await freshDb();
    const store = new SqliteEventStore(db);
    // Interleave streams so stream order is not just insertion order of the table.
    for (let i = 1; i <= 10; i++) {
      store.append("a", i - 1, [tick(i)]);
      store.append("b", "any", [tick(-i)]);
    }
    const a = store.readStream("a");
    assert.deepEqual(
      a.map((e) => [e.streamId, e.streamVersion, e.data]),
      Array.from({ length: 10 }, (_, i) => ["a", i + 1, { n: i + 1 }]),
    );
    for (let i = 1; i < a.length; i++) assert.ok(a[i - 1]!.position < a[i]!.position);
    assert.deepEqual(store.readStream("missing"), []);
  });

  it("readAll(after, limit) pages over three streams in position order", async () => {
    const { db } = await freshDb();
    const store = new SqliteEventStore(db);
    const streams = ["x", "y", "z"];
    for (let i = 0; i < 37; i++) {
      const s = streams[(i * 7) % 3]!;
      store.append(s, "any", [tick(i), ...(i % 5 === 0 ? [tick(i + 0.5)] : [])]);
    }
    const all = store.readAll(0, 10_000);
    assert.equal(all.length, count(db, "events"));
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1]!.position < all[i]!.position);

    for (const limit of [1, 4, 10, 1000]) {
      const paged: StoredEvent[] = [];
      let after = 0;
      let pages = 0;
      for (;;) {
        const page = store.readAll(after, limit);
        assert.ok(page.length <= limit);
        if (page.length === 0) break;
        paged.push(...page);
        after = page[page.length - 1]!.position;
        pages++;
      }
      assert.deepEqual(paged, all, `paging with limit ${limit}`);
      assert.equal(pages, Math.ceil(all.length / limit));
    }
    // Every stream's events appear in version order within the global order.
    for (const s of streams) {
      const versions = all.filter((e) => e.streamId === s).map((e) => e.streamVersion);
      assert.deepEqual(versions, Array.from({ length: versions.length }, (_, i) => i + 1));
      assert.deepEqual(
        store.readStream(s),
        all.filter((e) => e.streamId === s),
      );
    }
    const last = all[all.length - 1]!;
    assert.deepEqual(store.readAll(last.position, 10), []);
    assert.deepEqual(store.readAll(all[4]!.position, 2), all.slice(5, 7));
  });
});

describe("transactions roll back as a whole", () => {
  it("a projection that throws rolls back the events, the videos row and the outbox", async () => {
    const { db } = await freshDb();
    const good = new VideoStore(db);
    good.execute("v-existing", enqueue());
    const snapshot = () => ({ events: dump(db, "events"), videos: dump(db, "videos"), outbox: dump(db, "outbox") });
    const before = snapshot();

    let calls = 0;
    const boom = new VideoStore(db, {
      projections: [
        {
          name: "boom",
          apply() {
            calls++;
            throw new Error("boom");
          },
        },
      ],
    });
    assert.throws(() => boom.execute("v-new", enqueue()), /boom/);
    assert.throws(() => boom.execute("v-existing", start(1)), /boom/);
    assert.throws(() => boom.execute("v-existing", cancel()), /boom/);
    assert.equal(calls, 3);
    assert.deepEqual(snapshot(), before);
    assert.equal(boom.get("v-new"), null);
    assert.equal(boom.get("v-existing")?.state, "queued");
    assert.equal(db.raw.inTransaction, false);

    // The connection is still usable afterwards.
    good.execute("v-existing", start(1));
    assert.equal(good.get("v-existing")?.state, "running");
  });

  it("executeMany: a projection throw on the 3rd item rolls back items 1 and 2 as well", async () => {
    const { db } = await freshDb();
    const store = new VideoStore(db, {
      projections: [
        {
          name: "boom-on-m3",
          apply(_event, video) {
            if (video.id === "m3") throw new Error("projection failed on m3");
          },
        },
      ],
    });
    store.execute("m0", enqueue());
    const before = { events: dump(db, "events"), videos: dump(db, "videos"), outbox: dump(db, "outbox") };
    assert.throws(
      () =>
        store.executeMany([
          { videoId: "m1", command: enqueue() },
          { videoId: "m0", command: start(1) },
          { videoId: "m3", command: enqueue() },
          { videoId: "m4", command: enqueue() },
        ]),
      /projection failed on m3/,
    );
    assert.deepEqual({ events: dump(db, "events"), videos: dump(db, "videos"), outbox: dump(db, "outbox") }, before);
    assert.equal(store.get("m1"), null);
    assert.equal(store.get("m0")?.state, "queued");
    assert.equal(db.raw.inTransaction, false);
  });

  it("executeMany: a refusal raised after the item wrote (a projection's DomainError) leaves nothing of that item", async () => {
    const { db } = await freshDb();
    const store = new VideoStore(db, {
      projections: [
        {
          name: "picky",
          apply(_event, video) {
            if (video.id === "b") throw new DomainError("b", "projection refused b");
          },
        },
      ],
    });
    const results = store.executeMany([
      { videoId: "a", command: enqueue() },
      { videoId: "b", command: enqueue() },
      { videoId: "c", command: enqueue() },
    ]);
    assert.deepEqual(
      results.map((r) => [r.videoId, r.ok, r.ok ? null : r.error.message]),
      [
        ["a", true, null],
        ["b", false, "projection refused b"],
        ["c", true, null],
      ],
    );
    // Refused means not recorded: no event, no row, no outbox message for b.
    assert.equal(store.get("b"), null);
    assert.deepEqual(store.timeline("b"), []);
    assert.equal(count(db, "outbox", "video_id = 'b'"), 0);
    assert.deepEqual(
      (dump(db, "events") as { stream_id: string }[]).map((e) => e.stream_id),
      ["a", "c"],
    );
    assert.equal(db.raw.inTransaction, false);
  });

  it("executeMany: a domain refusal is reported in its slot and the other items commit", async () => {
    const { db } = await freshDb();
    const store = new VideoStore(db);
    store.execute("done", enqueue({ steps: ["probe"] }));
    store.execute("done", start(1));
    store.execute("done", complete(1, 0, "probe"));
    const doneBefore = store.get("done");
    const doneEvents = store.timeline("done");

    const results = store.executeMany([
      { videoId: "n1", command: enqueue() },
      { videoId: "done", command: cancel() },
      { videoId: "n2", command: enqueue({ lane: "high" }) },
      { videoId: "n1", command: start(1) },
    ]);
    assert.deepEqual(
      results.map((r) => [r.videoId, r.ok]),
      [
        ["n1", true],
        ["done", false],
        ["n2", true],
        ["n1", true],
      ],
    );
    const refused = results[1]!;
    assert.ok(!refused.ok);
    assert.ok(refused.error instanceof IllegalTransitionError);
    assert.match(refused.error.message, /cannot cancel video done: it is completed/);

    assert.equal(store.get("n1")?.state, "running");
    assert.equal(store.get("n2")?.lane, "high");
    assert.deepEqual(store.get("done"), doneBefore);
    assert.deepEqual(store.timeline("done"), doneEvents);
    assert.equal(count(db, "outbox", "video_id IN ('n1', 'n2')"), 2);
  });
});

describe("durability", () => {
  it("500 events over 50 videos read back deep-equal after close and reopen", async () => {
    const dir = scratchDir();
    const file = join(dir, "vqd.db");
    const steps = ["s0", "s1", "s2", "s3", "s4", "s5", "s6"]; // enqueue + start + 7 steps + completed = 10 events
    const ids = Array.from({ length: 50 }, (_, i) => `vid-${String(i).padStart(3, "0")}`);

    const db = await openDb(file);
    const store = new VideoStore(db);
    for (const [i, id] of ids.entries()) {
      store.execute(id, enqueue({ steps, lane: (["high", "normal", "low"] as const)[i % 3], metadata: { n: String(i) } }), { requestId: `req-${i}` });
      store.execute(id, start(1, `w${i % 4}`));
      steps.forEach((s, k) => store.execute(id, complete(1, k, s, { file: `/out/${id}/${s}`, bytes: i * 100 + k, nested: { ok: true, list: [k, null] } })));
    }
    const read = (s: VideoStore) => ({
      all: s.events.readAll(0, 100_000),
      videos: ids.map((id) => s.get(id)),
      timelines: ids.map((id) => s.timeline(id)),
      tables: { events: dump(s.database, "events"), videos: dump(s.database, "videos"), outbox: dump(s.database, "outbox") },
    });
    const before = read(store);
    assert.equal(before.all.length, 500);
    assert.ok(before.videos.every((v) => v?.state === "completed" && v.version === 10));
    await db.close();

    const reopened = await openDb(file);
    const after = read(new VideoStore(reopened));
    assert.deepEqual(after, before);
    assert.equal(reopened.raw.pragma("integrity_check", { simple: true }), "ok");
  });

  it("journal_mode is wal; synchronous is NORMAL (1) by default and FULL (2) on request", async () => {
    const dir = scratchDir();
    const normal = await openDb(join(dir, "normal.db"));
    assert.equal(normal.raw.pragma("journal_mode", { simple: true }), "wal");
    assert.equal(normal.raw.pragma("synchronous", { simple: true }), 1);
    assert.equal(normal.raw.pragma("foreign_keys", { simple: true }), 1);

    const full = await openDb(join(dir, "full.db"), { synchronous: "full" });
    assert.equal(full.raw.pragma("journal_mode", { simple: true }), "wal");
    assert.equal(full.raw.pragma("synchronous", { simple: true }), 2);

    // WAL is a property of the file: a reopen (here with "normal") finds it still set.
    await full.close();
    const again = await openDb(join(dir, "full.db"));
    assert.equal(again.raw.pragma("journal_mode", { simple: true }), "wal");
    assert.equal(again.raw.pragma("synchronous", { simple: true }), 1);
  });

  it("kill -9 in the middle of enqueueing: every enqueue the child saw accepted is in the log", async () => {
    const { db, file, dir } = await freshDb(); // created and migrated before the child starts
    await db.close();
    const TOTAL = 200;
    const KILL_AFTER = 60;
    const child = spawnScript(
      dir,
      "enqueuer.mjs",
      `
      import { openDatabase, VideoStore } from STORE_URL;
      const [file, total] = process.argv.slice(2);
      const db = await openDatabase({ file });
      const store = new VideoStore(db);
      for (let i = 0; i < Number(total); i++) {
        const id = "k-" + String(i).padStart(4, "0");
        store.execute(id, { type: "EnqueueVideo", path: "/in/" + id + ".mp4", pipeline: "web", steps: ["probe"], lane: "normal", maxAttempts: 3 });
        process.stdout.write(id + "\\n");
        // Bursts of back-to-back commits with short pauses, so the kill can land anywhere.
        if (i % 4 === 3) await new Promise((resolve) => setTimeout(resolve, 2));
      }
      process.stdout.write("done\\n");
      `,
      [file, String(TOTAL)],
    );
    const printed: string[] = [];
    let sawDone = false;
    const out = lines(child, (line) => {
      if (line === "done") sawDone = true;
      else printed.push(line);
      if (printed.length === KILL_AFTER) child.kill("SIGKILL");
    });
    const { signal } = await exited(child);
    assert.equal(signal, "SIGKILL", `the child should have been killed (stderr: ${out.stderr()})`);
    assert.equal(sawDone, false, "the child was killed before it finished");
    assert.ok(printed.length >= KILL_AFTER && printed.length < TOTAL, `killed mid-way (${printed.length} printed)`);

    const reopened = await openDb(file);
    assert.equal(reopened.raw.pragma("integrity_check", { simple: true }), "ok");
    const store = new VideoStore(reopened);
    for (const id of printed) {
      const video = store.get(id);
      assert.ok(video, `accepted enqueue of ${id} was lost`);
      assert.equal(video.path, `/in/${id}.mp4`);
      const timeline = store.timeline(id);
      assert.deepEqual(
        timeline.map((e) => [e.type, e.streamVersion]),
        [["VideoEnqueued", 1]],
      );
    }
    // Whatever got further than what was printed is whole: row, event and outbox row together.
    const videos = count(reopened, "videos");
    assert.ok(videos >= printed.length);
    assert.equal(count(reopened, "events"), videos);
    assert.equal(count(reopened, "outbox"), videos);
  });
});

describe("database guards", () => {
  it("the partial unique index refuses a second VideoCompleted on a stream, even through the raw event store", async () => {
    const { db } = await freshDb();
    const store = new VideoStore(db);
    const id = "once";
    store.execute(id, enqueue({ steps: ["probe"] }));
    store.execute(id, start(1));
    store.execute(id, complete(1, 0, "probe"));
    assert.equal(store.get(id)?.state, "completed");
    const rows = dump(db, "events");

    const data = { attempts: 1, outputs: { probe: {} }, at: "2025-03-01T12:00:00.000Z" };
    assert.throws(
      () => store.events.append(id, "any", [{ type: "VideoCompleted", data }]),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, "SQLITE_CONSTRAINT_UNIQUE");
        assert.match(err.message, /UNIQUE constraint failed: events\.stream_id/);
        return true;
      },
    );
    assert.deepEqual(dump(db, "events"), rows);
    // Other streams can each have their own completion.
    store.events.append("other", "any", [{ type: "VideoCompleted", data }]);
    assert.throws(() => store.events.append("other", "any", [{ type: "VideoCompleted", data }]), /UNIQUE/);
  });

  it("several processes opening one fresh file at once all get a migrated database", async () => {
    const dir = scratchDir();
    const file = join(dir, "fresh.db");
    const source = `
      import { openDatabase, SqliteEventStore } from STORE_URL;
      const [file, name] = process.argv.slice(2);
      const db = await openDatabase({ file });
      new SqliteEventStore(db).append(name, 0, [{ type: "Hello", data: { name } }]);
      await db.close();
      process.stdout.write("ok\\n");
    `;
    const children = Array.from({ length: 4 }, (_, i) => spawnScript(dir, `opener-${i}.mjs`, source, [file, `p${i}`]));
    const outcomes = await Promise.all(
      children.map(async (child) => {
        let out = "";
        const io = lines(child, (line) => (out += line));
        const { code } = await exited(child);
        return { code, out, stderr: io.stderr() };
      }),
    );
    for (const o of outcomes) assert.deepEqual([o.code, o.out], [0, "ok"], o.stderr);
    const db = await openDb(file);
    assert.deepEqual(
      new SqliteEventStore(db)
        .readAll(0, 100)
        .map((e) => e.streamId)
        .sort(),
      ["p0", "p1", "p2", "p3"],
    );
  });

  it("opening one fresh file twice at once in one process works too", async () => {
    const file = join(scratchDir(), "fresh.db");
    const [a, b] = await Promise.all([openDb(file), openDb(file)]);
    new SqliteEventStore(a).append("s", 0, [tick(1)]);
    assert.equal(new SqliteEventStore(b).streamVersion("s"), 1);
  });

  it("a migration that fails half-way leaves nothing behind, and the error names the file", async () => {
    const file = join(scratchDir(), "clash.db");
    // A stray table with the name the first migration creates last makes it fail after it
    // already created `events` and `videos`.
    const raw = new BetterSqlite3(file);
    raw.exec("CREATE TABLE outbox (x)");
    raw.close();
    await assert.rejects(openDatabase({ file }), (err: unknown) => {
      assert.ok(err instanceof StoreError, String(err));
      assert.ok(err.message.includes(file), err.message);
      assert.match(err.message, /already exists/);
      return true;
    });
    const check = new BetterSqlite3(file);
    const tables = (check.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    assert.deepEqual(tables, ["outbox"], "nothing of the failed migration is left");
    check.exec("DROP TABLE outbox");
    check.close();
    const db = await openDb(file);
    assert.equal(new SqliteEventStore(db).append("s", 0, [tick(1)]).nextExpectedVersion, 1);
  });

  it("a database with damaged pages behind a valid header is refused with a StoreError naming the file", async () => {
    const { db, file } = await freshDb();
    const store = new VideoStore(db);
    for (let i = 0; i < 200; i++) store.execute(`v${i}`, enqueue({ path: `/in/${"x".repeat(100)}/${i}.mp4` }));
    db.raw.pragma("wal_checkpoint(TRUNCATE)");
    await db.close();
    const size = statSync(file).size;
    const offset = 4096; // keep page 1 (header and schema), scribble over the rest
    const fd = openSync(file, "r+");
    writeSync(fd, randomBytes(size - offset), 0, size - offset, offset);
    closeSync(fd);
    await assert.rejects(openDatabase({ file }), (err: unknown) => {
      assert.ok(err instanceof StoreError, String(err));
      assert.ok(err.message.includes(file), err.message);
      return true;
    });
  });

  it("a corrupt database file is refused with a StoreError naming the file", async () => {
    const dir = scratchDir();
    const file = join(dir, "garbage.db");
    writeFileSync(file, randomBytes(64 * 1024));
    await assert.rejects(openDatabase({ file }), (err: unknown) => {
      assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
      assert.ok(err.message.includes(file), `the message names the file: ${err.message}`);
      assert.match(err.message, /not a database/);
      return true;
    });
    // Read-only opening of the same file fails the same way.
    await assert.rejects(openDatabase({ file, readonly: true }), StoreError);
    // A missing file in read-only mode too.
    await assert.rejects(openDatabase({ file: join(dir, "missing.db"), readonly: true }), (err: unknown) => {
      assert.ok(err instanceof StoreError);
      assert.ok(err.message.includes(join(dir, "missing.db")));
      return true;
    });
  });
});
