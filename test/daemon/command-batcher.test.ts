/**
 * CommandBatcher: group commit with write-behind on a real SQLite file. A command's outcome is
 * known (and visible to later commands) at once, but another connection sees it only after the
 * turn's commit; a failure that is not a refusal rolls the whole group back and says so through
 * `durable`; a refused command does not affect the others.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { CommandBatcher, WindowRolledBackError } from "../../src/daemon/command-batcher.js";
import type { Video } from "../../src/domain/index.js";
import { VideoStore, type BatchItemResult, type Projection } from "../../src/store/index.js";
import { complete, enqueue, freshDb, start } from "../store/fixtures.js";

async function setup(projections: Projection[] = []) {
  const { db, file } = await freshDb();
  const store = new VideoStore(db, { projections });
  const committed: (readonly BatchItemResult[])[] = [];
  const batcher = new CommandBatcher(store, (results) => committed.push(results));
  // A second connection to the same file: what a crash would leave is what it can read.
  const outside = new Database(file, { readonly: true });
  const onDisk = (id: string): number => (outside.prepare("SELECT count(*) AS n FROM events WHERE stream_id = ?").get(id) as { n: number }).n;
  return { db, store, batcher, committed, onDisk, close: () => outside.close() };
}

describe("command batcher (group commit, write-behind)", () => {
  it("decides at once, commits at the end of the turn, and only then reports the group committed", async () => {
    const t = await setup();
    try {
      const a = t.batcher.run({ videoId: "a", command: enqueue() });
      assert.equal(a.result.ok, true);
      // The next command sees the first one's outcome in the same turn...
      const s = t.batcher.run({ videoId: "a", command: start(1) });
      assert.equal(s.result.ok, true);
      assert.equal((s.result as { video: Video }).video.state, "running");
      // ...but nothing is on disk yet, and no post-commit hook has run.
      assert.equal(t.onDisk("a"), 0);
      assert.equal(t.committed.length, 0);
      await s.durable;
      assert.equal(t.onDisk("a"), 2);
      assert.equal(t.committed.length, 1, "one commit for both commands");
      assert.equal(t.committed[0]?.length, 2);
    } finally {
      t.close();
    }
  });

  it("a refused command records nothing and the others in its group still commit", async () => {
    const t = await setup();
    try {
      const ok = t.batcher.run({ videoId: "b", command: enqueue() });
      const refused = t.batcher.run({ videoId: "nobody", command: complete(1, 0, "probe") });
      assert.equal(refused.result.ok, false);
      assert.match((refused.result as { error: Error }).error.message, /nobody|not found|no video/i);
      await ok.durable;
      await refused.durable;
      assert.equal(t.onDisk("b"), 1);
      assert.equal(t.onDisk("nobody"), 0);
    } finally {
      t.close();
    }
  });

  it("an error that is not a refusal rolls the whole group back; the next group works", async () => {
    let broken = true;
    const t = await setup([
      {
        name: "flaky",
        apply: (e) => {
          if (broken && e.streamId === "boom") throw new Error("disk on fire");
        },
      },
    ]);
    try {
      const first = t.batcher.run({ videoId: "c", command: enqueue() });
      assert.throws(() => t.batcher.run({ videoId: "boom", command: enqueue() }), /disk on fire/);
      await assert.rejects(first.durable, (err: Error) => err instanceof WindowRolledBackError && /disk on fire/.test(err.message));
      assert.equal(t.onDisk("c"), 0, "the earlier command of the group is rolled back too");
      assert.equal(t.store.get("c"), null);
      assert.equal(t.committed.length, 0, "no post-commit hook for a rolled-back group");
      broken = false;
      const again = t.batcher.run({ videoId: "c", command: enqueue() });
      await again.durable;
      assert.equal(t.onDisk("c"), 1);
      assert.equal(t.committed.length, 1);
    } finally {
      t.close();
    }
  });

  it("submit() and executeMany() resolve only once committed; flush() commits at once", async () => {
    const t = await setup();
    try {
      const r = await t.batcher.submit({ videoId: "d", command: enqueue() });
      assert.equal(r.ok, true);
      assert.equal(t.onDisk("d"), 1);
      const many = await t.batcher.executeMany([
        { videoId: "e1", command: enqueue() },
        { videoId: "e2", command: enqueue() },
      ]);
      assert.deepEqual(
        many.map((m) => m.ok),
        [true, true],
      );
      assert.equal(t.onDisk("e1") + t.onDisk("e2"), 2);
      t.batcher.run({ videoId: "f", command: enqueue() });
      t.batcher.flush();
      assert.equal(t.onDisk("f"), 1, "flush() commits without waiting for the turn to end");
    } finally {
      t.close();
    }
  });

  it("refuses to start a group inside someone else's open transaction", async () => {
    const t = await setup();
    try {
      t.db.raw.prepare("BEGIN").run();
      assert.throws(() => t.batcher.run({ videoId: "g", command: enqueue() }), /already open/);
      t.db.raw.prepare("ROLLBACK").run();
    } finally {
      t.close();
    }
  });
});
