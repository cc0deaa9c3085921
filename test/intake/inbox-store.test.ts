/**
 * The inbox with the real enqueue path: enqueueVideos into a VideoStore on a SQLite file, the
 * config loaded from YAML, restarts that reopen the database, and a crash between the enqueue
 * and the known-files row.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { loadConfig, type Config } from "../../src/config/index.js";
import { enqueueVideos, InboxWatcher, KnownFiles, type InboxEnqueue } from "../../src/intake/index.js";
import { openDatabase, VideoStore, type Database } from "../../src/store/index.js";
import { captureLogger, sleep, tempDir } from "./inbox-helpers.js";

let base: string;
let inbox: string;
let done: string;
let config: Config;
const dbFile = () => path.join(base, "data", "vqd.db");

before(() => {
  base = tempDir("vqd-inbox-store-");
  inbox = path.join(base, "videos", "inbox");
  done = path.join(base, "videos", "done");
  fs.mkdirSync(inbox, { recursive: true });
  const file = path.join(base, "vqd.yaml");
  fs.writeFileSync(
    file,
    `dataDir: data
allowedRoots: [videos]
inboxes:
  - folder: videos/inbox
    pipeline: noop
    lane: high
    patterns: ["*.MP4"]
    settleMs: 400
    doneFolder: videos/done
`,
  );
  config = loadConfig({ file, env: {}, cwd: base });
});

after(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

/** A daemon-like run: open the database, watch, do something, stop, close. */
async function run<T>(body: (ctx: { store: VideoStore; db: Database; watcher: InboxWatcher }) => Promise<T>): Promise<T> {
  const db = await openDatabase({ file: dbFile() });
  const store = new VideoStore(db);
  const enqueue: InboxEnqueue = (paths, o) => enqueueVideos(store, config, { paths, lane: o.lane, pipeline: o.pipeline, metadata: o.metadata, source: "inbox" });
  const watcher = new InboxWatcher({ config, enqueue, knownFiles: new KnownFiles(db), logger: captureLogger().logger, cwd: base });
  try {
    await watcher.start();
    return await body({ store, db, watcher });
  } finally {
    await watcher.stop();
    await db.close();
  }
}

test("a settled file becomes one video in the store, once across restarts and a crash, and its original moves when it completes", async () => {
  const file = path.join(inbox, "clip.mp4");
  const id = await run(async ({ store }) => {
    for (let i = 0; i < 4; i++) {
      fs.appendFileSync(file, Buffer.alloc(10_000, i));
      await sleep(150);
    }
    const deadline = Date.now() + 5000;
    while ((await store.counts()).total === 0 && Date.now() < deadline) await sleep(20);
    const [video] = await store.list({});
    assert.ok(video, "one video was enqueued");
    assert.equal(video.path, file);
    assert.equal(video.pipeline, "noop");
    assert.equal(video.lane, "high");
    assert.deepEqual(video.metadata, { inbox });
    assert.deepEqual(store.timeline(video.id)[0]?.metadata, { source: "inbox" });
    return video.id;
  });

  // A restart: the same file is known.
  await run(async ({ store }) => {
    await sleep(1000);
    assert.equal((await store.counts()).total, 1);
  });

  // A crash after the enqueue committed but before the known-files row got its id.
  const copy = path.join(inbox, "crashed.mp4");
  fs.writeFileSync(copy, "enqueued just before a crash");
  const st = fs.statSync(copy, { bigint: true });
  {
    const db = await openDatabase({ file: dbFile() });
    const known = new KnownFiles(db);
    known.markPending([{ path: copy, inbox, size: Number(st.size), mtimeNs: st.mtimeNs.toString(), realPath: copy }]);
    const [out] = await enqueueVideos(new VideoStore(db), config, { paths: [copy], pipeline: "noop", source: "inbox" });
    assert.ok(out?.ok);
    await db.close();
  }
  await run(async ({ store, db, watcher }) => {
    await sleep(1000);
    assert.equal((await store.counts()).total, 2, "the crashed enqueue is not repeated");
    const row = new KnownFiles(db).get(copy);
    assert.ok(row?.videoId, "the pending row got its video id");

    // The first video completes: the daemon's terminal hook moves the original.
    await watcher.onVideoFinished(id, "completed", file);
  });
  assert.equal(fs.existsSync(file), false);
  assert.ok(fs.existsSync(path.join(done, "clip.mp4")));
});
