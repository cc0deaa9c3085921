import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { loadConfig, type Config } from "../../src/config/index.js";
import { enqueueVideos, InputError } from "../../src/intake/index.js";
import { openDatabase, VideoStore, type Database } from "../../src/store/index.js";

let base: string;
let root: string;
let config: Config;
let db: Database;
let store: VideoStore;

before(async () => {
  base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "vqd-enqueue-")));
  root = path.join(base, "videos");
  fs.mkdirSync(root);
  for (const name of ["a.mp4", "b.mp4"]) fs.writeFileSync(path.join(root, name), "x");
  config = loadConfig({ env: { VQD_DATADIR: path.join(base, "data"), VQD_ALLOWEDROOTS: `[${root}]` }, cwd: base });
  db = await openDatabase({ file: ":memory:" });
  store = new VideoStore(db);
});

after(async () => {
  await db.close();
  fs.rmSync(base, { recursive: true, force: true });
});

describe("enqueueVideos", () => {
  test("one outcome per input, in input order; bad inputs do not stop good ones", async () => {
    const a = path.join(root, "a.mp4");
    const out = await enqueueVideos(store, config, { paths: ["videos/missing.mp4", a, "/etc/passwd", "videos/b.mp4"], cwd: base, source: "test" });
    assert.deepEqual(
      out.map((o) => [o.input, o.ok]),
      [
        ["videos/missing.mp4", false],
        [a, true],
        ["/etc/passwd", false],
        ["videos/b.mp4", true],
      ],
    );
    for (const o of out) if (o.ok) assert.equal(store.get(o.id)?.path, o.path);
    const bad = out.filter((o) => !o.ok);
    assert.deepEqual(
      bad.map((o) => (o.ok ? "" : o.problem)),
      ["missing", "outside-roots"],
    );
  });

  test("the same path given twice is enqueued twice, and each occurrence reports its own id", async () => {
    const out = await enqueueVideos(store, config, { paths: ["videos/a.mp4", "videos/a.mp4", "./videos/a.mp4"], cwd: base, source: "test" });
    const ids = out.map((o) => (o.ok ? o.id : assert.fail(o.error)));
    assert.equal(new Set(ids).size, 3, `ids: ${ids.join(", ")}`);
    for (const id of ids) assert.equal(store.get(id)?.path, path.join(root, "a.mp4"));
  });

  test("an unknown pipeline or lane refuses the whole request before anything is recorded", async () => {
    const before = (await store.counts()).total;
    await assert.rejects(enqueueVideos(store, config, { paths: ["videos/a.mp4"], pipeline: "nope", cwd: base, source: "test" }), (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.equal(err.problem, "unknown-pipeline");
      assert.match(err.message, /known: default, noop/);
      return true;
    });
    await assert.rejects(enqueueVideos(store, config, { paths: ["videos/a.mp4"], lane: "urgent", cwd: base, source: "test" }), /unknown priority "urgent"/);
    assert.equal((await store.counts()).total, before);
  });

  test("lane and pipeline are recorded with the pipeline's steps", async () => {
    const [o] = await enqueueVideos(store, config, { paths: ["videos/b.mp4"], lane: "high", pipeline: "noop", cwd: base, source: "test" });
    assert.ok(o?.ok);
    assert.equal(o.video.lane, "high");
    assert.equal(o.video.pipeline, "noop");
    assert.deepEqual(o.video.steps, ["noop"]);
  });
});
