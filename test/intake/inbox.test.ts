import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { isConfigError, type ConfigError } from "../../src/config/index.js";
import { InboxWatcher, KnownFiles, type InboxEnqueue } from "../../src/intake/index.js";
import { openDatabase, type Database } from "../../src/store/index.js";
import { captureLogger, fakeEnqueue, inboxConfig, sleep, tempDir, waitFor, type LogLine } from "./inbox-helpers.js";

let base: string;
let root: string;
const open: Database[] = [];
const watchers: InboxWatcher[] = [];

before(() => {
  base = tempDir("vqd-inbox-");
  root = path.join(base, "root");
  fs.mkdirSync(root);
});

after(async () => {
  await Promise.all(watchers.map((w) => w.stop()));
  await Promise.all(open.map((d) => d.close()));
  fs.rmSync(base, { recursive: true, force: true });
});

async function db(name: string): Promise<Database> {
  const d = await openDatabase({ file: path.join(base, `${name}.db`) });
  open.push(d);
  return d;
}

function folder(...parts: string[]): string {
  const dir = path.join(root, ...parts);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function watcher(database: Database, inboxes: Record<string, unknown>[], enqueue: InboxEnqueue): { w: InboxWatcher; lines: LogLine[] } {
  const log = captureLogger();
  const w = new InboxWatcher({ config: inboxConfig(base, [root], inboxes), enqueue, knownFiles: new KnownFiles(database), logger: log.logger });
  watchers.push(w);
  return { w, lines: log.lines };
}

describe("settling, restarts and changed files", () => {
  const SETTLE = 800;
  let inbox: string;
  let file: string;
  let database: Database;
  let size = 0;

  before(async () => {
    inbox = folder("settle");
    file = path.join(inbox, "slow.mp4");
    database = await db("settle");
  });

  test("a file written in chunks over 2 s is enqueued exactly once, after it settles", async () => {
    const fake = fakeEnqueue();
    const { w } = watcher(database, [{ folder: inbox, settleMs: SETTLE, pipeline: "noop", lane: "high" }], fake.enqueue);
    await w.start();
    const chunk = Buffer.alloc(64 * 1024, 7);
    const fd = fs.openSync(file, "w");
    let lastWrite = 0;
    for (let i = 0; i < 6; i++) {
      if (i > 0) await sleep(400);
      fs.writeSync(fd, chunk);
      lastWrite = Date.now();
      assert.equal(fake.calls.length, 0, `enqueued while still being written (after chunk ${i + 1})`);
    }
    fs.closeSync(fd);
    size = 6 * chunk.length;
    await waitFor("the enqueue", () => fake.calls.length > 0);
    const call = fake.calls[0]!;
    assert.deepEqual(call.paths, [file]);
    assert.deepEqual(call.sizes, [size], "enqueued with its final size");
    assert.ok(call.at - lastWrite >= SETTLE - 5, `enqueued ${call.at - lastWrite} ms after the last write, settleMs is ${SETTLE}`);
    assert.deepEqual(call.options, { lane: "high", pipeline: "noop", metadata: { inbox } });
    await sleep(SETTLE * 2);
    assert.equal(fake.calls.length, 1, "enqueued exactly once");
    await w.stop();
    assert.deepEqual(w.stats(), { inboxes: 1, watchedFolders: 0, settling: 0, intervals: 0 });
  });

  test("a restart (a new watcher on the same database) does not enqueue it again", async () => {
    const fake = fakeEnqueue();
    const { w } = watcher(database, [{ folder: inbox, settleMs: SETTLE }], fake.enqueue);
    await w.start();
    await sleep(300);
    assert.equal(w.stats().settling, 0, "a known file is recognised at once, with no settle timer");
    await sleep(SETTLE * 2);
    assert.equal(fake.calls.length, 0);
    await w.stop();
  });

  test("a file modified while watched is enqueued again; one replaced while stopped is enqueued at the next start", async () => {
    const fake = fakeEnqueue();
    const { w } = watcher(database, [{ folder: inbox, settleMs: SETTLE }], fake.enqueue);
    await w.start();
    fs.appendFileSync(file, "more");
    await waitFor("the second enqueue", () => fake.calls.length > 0);
    assert.deepEqual(fake.calls[0]!.sizes, [size + 4]);
    await w.stop();

    // Replaced by a different file while nothing watches: same name, other size and mtime.
    fs.writeFileSync(path.join(inbox, "tmp-new.part"), "a different video");
    fs.renameSync(path.join(inbox, "tmp-new.part"), file);
    const fake2 = fakeEnqueue();
    const { w: w2 } = watcher(database, [{ folder: inbox, settleMs: SETTLE }], fake2.enqueue);
    await w2.start();
    await waitFor("the enqueue after the restart", () => fake2.calls.length > 0);
    assert.deepEqual(fake2.paths(), [file]);
    await sleep(SETTLE * 2);
    assert.equal(fake2.calls.length, 1);
    await w2.stop();
  });
});

describe("what is considered", () => {
  const SETTLE = 300;

  test("moved-in files and temp names renamed to a matching name are enqueued; temp, hidden, empty and non-matching files are not", async () => {
    const inbox = folder("names");
    const staging = folder("staging");
    fs.writeFileSync(path.join(staging, "moved.mp4"), "moved video");
    fs.writeFileSync(path.join(inbox, "present.MOV"), "there before the start");
    const fake = fakeEnqueue();
    const { w } = watcher(await db("names"), [{ folder: inbox, settleMs: SETTLE, patterns: ["*.mp4", "*.mov"] }], fake.enqueue);
    await w.start();

    fs.renameSync(path.join(staging, "moved.mp4"), path.join(inbox, "moved.mp4"));
    // A download tool: writes `x.mp4.part` slowly, then renames it.
    const part = path.join(inbox, "download.mp4.part");
    for (let i = 0; i < 3; i++) {
      fs.appendFileSync(part, Buffer.alloc(1000, i));
      await sleep(SETTLE / 2);
    }
    for (const name of ["empty.mp4", ".hidden.mp4", "clip.tmp", "clip.mp4.crdownload", "notes.txt", "clip.mp4~", "video.mkv"]) {
      fs.writeFileSync(path.join(inbox, name), name === "empty.mp4" ? "" : "ignored");
    }
    await sleep(SETTLE * 2);
    assert.ok(!fake.paths().includes(part), "the .part file is never enqueued");
    fs.renameSync(part, path.join(inbox, "download.mp4"));
    await waitFor("three enqueued files", () => fake.paths().length >= 3);
    await sleep(SETTLE * 2);
    assert.deepEqual(fake.paths().map((p) => path.basename(p)).sort(), ["download.mp4", "moved.mp4", "present.MOV"]);
    await w.stop();
  });

  test("recursive inboxes watch existing and new sub-folders, but not hidden ones or the done folder; others watch only the top", async () => {
    const deep = folder("rec", "a", "b");
    fs.writeFileSync(path.join(deep, "deep.mp4"), "deep");
    const rec = path.join(root, "rec");
    folder("rec", ".cache");
    folder("rec", "done");
    const flat = folder("flat");
    folder("flat", "sub");
    const fake = fakeEnqueue();
    const { w } = watcher(
      await db("recursive"),
      [
        { folder: rec, settleMs: SETTLE, recursive: true, doneFolder: path.join(rec, "done") },
        { folder: flat, settleMs: SETTLE },
      ],
      fake.enqueue,
    );
    await w.start();
    await waitFor("the file present at start", () => fake.paths().length >= 1);
    const fresh = path.join(rec, "new", "deeper");
    fs.mkdirSync(fresh, { recursive: true });
    await sleep(100);
    fs.writeFileSync(path.join(fresh, "fresh.mp4"), "new folder, new file");
    fs.writeFileSync(path.join(rec, ".cache", "hidden.mp4"), "x");
    fs.writeFileSync(path.join(rec, "done", "finished.mp4"), "x");
    fs.writeFileSync(path.join(flat, "sub", "nested.mp4"), "x");
    fs.writeFileSync(path.join(flat, "top.mp4"), "x");
    await waitFor("three enqueued files", () => fake.paths().length >= 3);
    await sleep(SETTLE * 2);
    assert.deepEqual(fake.paths().sort(), [path.join(deep, "deep.mp4"), path.join(fresh, "fresh.mp4"), path.join(flat, "top.mp4")].sort());
    const perInbox = new Map(fake.calls.map((c) => [c.paths[0], c.options.metadata.inbox]));
    assert.equal(perInbox.get(path.join(flat, "top.mp4")), flat);
    await w.stop();
  });

  test("a symlink leading out of the allowed roots is refused, logged once and left alone; one inside them is enqueued", async () => {
    const inbox = folder("links");
    const outside = path.join(base, "outside");
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, "secret.mp4"), "secret");
    fs.writeFileSync(path.join(folder("elsewhere"), "real.mp4"), "real");
    fs.symlinkSync(path.join(outside, "secret.mp4"), path.join(inbox, "evil.mp4"));
    fs.symlinkSync(path.join(root, "elsewhere", "real.mp4"), path.join(inbox, "good.mp4"));
    const fake = fakeEnqueue();
    const { w, lines } = watcher(await db("links"), [{ folder: inbox, settleMs: SETTLE, rescanMs: 1000 }], fake.enqueue);
    await w.start();
    await waitFor("the good link", () => fake.paths().length >= 1);
    await sleep(1500); // past a rescan
    assert.deepEqual(fake.paths(), [path.join(inbox, "good.mp4")]);
    const refusals = lines.filter((l) => l.level === "warn" && l.obj.file === path.join(inbox, "evil.mp4"));
    assert.equal(refusals.length, 1, JSON.stringify(lines));
    assert.equal(refusals[0]!.obj.problem, "outside-roots");
    assert.ok(fs.lstatSync(path.join(inbox, "evil.mp4")).isSymbolicLink(), "the link is left in place");
    assert.equal(fs.readFileSync(path.join(outside, "secret.mp4"), "utf8"), "secret");
    await w.stop();
  });
});

describe("done and failed folders", () => {
  test("the original moves on completion (suffixed on a name collision) or dead-lettering; errors are logged, not thrown", async () => {
    const inbox = folder("moves");
    const done = folder("moves-done");
    const failed = path.join(root, "moves-failed", "nested"); // created at start
    fs.writeFileSync(path.join(done, "a.mp4"), "an older a.mp4");
    for (const name of ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]) fs.writeFileSync(path.join(inbox, name), `video ${name}`);
    const fake = fakeEnqueue();
    const log = captureLogger();
    const w = new InboxWatcher({
      config: inboxConfig(base, [root], [{ folder: inbox, settleMs: 200, doneFolder: done, failedFolder: failed }]),
      enqueue: fake.enqueue,
      knownFiles: new KnownFiles(await db("moves")),
      logger: log.logger,
    });
    watchers.push(w);
    await w.start();
    assert.ok(fs.statSync(failed).isDirectory(), "failedFolder is created");
    await waitFor("four enqueued files", () => fake.paths().length === 4);
    const id = (name: string) => {
      const c = fake.calls.find((x) => x.paths.includes(path.join(inbox, name)))!;
      return c.ids[c.paths.indexOf(path.join(inbox, name))]!;
    };

    await w.onVideoFinished(id("a.mp4"), "completed", path.join(inbox, "a.mp4"));
    assert.equal(fs.existsSync(path.join(inbox, "a.mp4")), false);
    assert.equal(fs.readFileSync(path.join(done, "a.mp4"), "utf8"), "an older a.mp4", "the existing file is untouched");
    assert.equal(fs.readFileSync(path.join(done, "a-1.mp4"), "utf8"), "video a.mp4");

    await w.onVideoFinished(id("b.mp4"), "dead", path.join(inbox, "b.mp4"));
    assert.equal(fs.readFileSync(path.join(failed, "b.mp4"), "utf8"), "video b.mp4");

    await w.onVideoFinished(id("c.mp4"), "cancelled", path.join(inbox, "c.mp4"));
    await w.onVideoFinished("not-from-an-inbox", "completed", "/elsewhere/x.mp4");
    assert.ok(fs.existsSync(path.join(inbox, "c.mp4")), "a cancelled video's original stays");

    // The done folder replaced by a file: the move fails, is logged, and the original stays.
    fs.rmSync(done, { recursive: true });
    fs.writeFileSync(done, "not a folder");
    await w.onVideoFinished(id("d.mp4"), "completed", path.join(inbox, "d.mp4"));
    assert.ok(fs.existsSync(path.join(inbox, "d.mp4")));
    assert.ok(log.lines.some((l) => l.level === "error" && l.obj.videoId === id("d.mp4")), "the failure is logged");

    // A file dropped again under a moved file's name is a new file.
    fs.writeFileSync(path.join(inbox, "a.mp4"), "a new a.mp4");
    await waitFor("the new a.mp4", () => fake.paths().length === 5);
    await w.stop();
  });
});

describe("config checked at start", () => {
  async function startError(inboxes: Record<string, unknown>[], roots = [root]): Promise<ConfigError> {
    const w = new InboxWatcher({
      config: inboxConfig(base, roots, inboxes),
      enqueue: fakeEnqueue().enqueue,
      knownFiles: new KnownFiles(await db(`bad-${Math.random().toString(36).slice(2)}`)),
      logger: captureLogger().logger,
    });
    let caught: unknown;
    await w.start().catch((e: unknown) => (caught = e));
    assert.ok(isConfigError(caught), `expected a ConfigError, got ${String(caught)}`);
    assert.deepEqual(w.stats(), { inboxes: 0, watchedFolders: 0, settling: 0, intervals: 0 }, "nothing left open");
    await w.stop();
    return caught as ConfigError;
  }

  test("a folder outside allowedRoots, a missing folder, an unknown pipeline or a bad doneFolder name the key", async () => {
    const outside = path.join(base, "not-a-root");
    fs.mkdirSync(outside, { recursive: true });
    const good = folder("good");
    let e = await startError([{ folder: outside }]);
    assert.equal(e.keyPath, "inboxes[0].folder");
    assert.match(e.message, /^invalid config: inboxes\[0\]\.folder: must be inside allowedRoots/);
    e = await startError([{ folder: good }, { folder: path.join(root, "missing") }]);
    assert.equal(e.keyPath, "inboxes[1].folder");
    assert.match(e.reason, /no such folder/);
    e = await startError([{ folder: good }], []);
    assert.equal(e.keyPath, "inboxes[0].folder");
    e = await startError([{ folder: good, pipeline: "nope" }]);
    assert.equal(e.keyPath, "inboxes[0].pipeline");
    e = await startError([{ folder: good, doneFolder: path.join(outside, "done") }]);
    assert.equal(e.keyPath, "inboxes[0].doneFolder");
    e = await startError([{ folder: good }, { folder: good }]);
    assert.equal(e.keyPath, "inboxes[1].folder");
    assert.match(e.reason, /same folder as inboxes\[0\]\.folder/);
  });

  test("with no inbox configured, start and stop do nothing and open nothing", async () => {
    const w = new InboxWatcher({ config: inboxConfig(base, [], []), enqueue: fakeEnqueue().enqueue, knownFiles: new KnownFiles(await db("none")), logger: captureLogger().logger });
    await w.start();
    assert.deepEqual(w.stats(), { inboxes: 0, watchedFolders: 0, settling: 0, intervals: 0 });
    await w.onVideoFinished("v1", "completed", "/x.mp4");
    await w.stop();
  });
});
