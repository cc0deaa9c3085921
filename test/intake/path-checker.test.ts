/**
 * PathChecker: paths are checked in a worker thread, a batch at a time, one outcome per input in
 * order; a batch that gets no answer in time fails as "unreadable" and the next batch gets a new
 * worker; an idle worker is ended. (Each check itself is covered by validate-path.test.ts.)
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { InputError, PathChecker } from "../../src/intake/index.js";
import { waitFor } from "../support/wait.js";

let root: string;
before(() => {
  root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "vqd-checker-")));
  fs.writeFileSync(path.join(root, "a.mp4"), "a");
  fs.writeFileSync(path.join(root, "b.mp4"), "b");
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

describe("PathChecker", () => {
  test("a batch of good and bad paths: one outcome per input, in order", async () => {
    const checker = new PathChecker();
    try {
      const out = await checker.check(["a.mp4", "missing.mp4", "/etc/passwd", "b.mp4", ""], [root], root);
      assert.equal(out.length, 5);
      assert.deepEqual(out[0], { path: path.join(root, "a.mp4") });
      assert.deepEqual(out[3], { path: path.join(root, "b.mp4") });
      const problems = out.map((o) => ("error" in o ? (o.error as InputError).problem : "ok"));
      assert.deepEqual(problems, ["ok", "missing", "outside-roots", "ok", "invalid"]);
      for (const o of out) if ("error" in o) assert.ok(o.error instanceof InputError);
      assert.deepEqual(await checker.check([], [root], root), []);
    } finally {
      await checker.close();
    }
  });

  test("no answer in time: the batch fails as unreadable, naming the wait, and the next batch gets a new worker", async () => {
    const checker = new PathChecker({ timeoutMs: 300 });
    try {
      // Far more than 300 ms of work: stands in for a mount that does not answer.
      const many = Array.from({ length: 1_000_000 }, (_, i) => `missing-${i}.mp4`);
      const out = await checker.check(many, [root], root);
      assert.equal(out.length, many.length);
      const first = out[0];
      assert.ok(first && "error" in first);
      assert.equal(first.error.problem, "unreadable");
      assert.match(first.error.message, /no answer from the file system after 300 ms/);
      assert.deepEqual(await checker.check(["a.mp4"], [root], root), [{ path: path.join(root, "a.mp4") }]);
    } finally {
      await checker.close();
    }
  });

  test("an idle worker thread is ended, and a later check starts a new one", async () => {
    const checker = new PathChecker({ idleMs: 50 });
    try {
      await checker.check(["a.mp4"], [root], root);
      await waitFor(() => !checker.running, 2000, "the idle worker to end");
      assert.deepEqual(await checker.check(["b.mp4"], [root], root), [{ path: path.join(root, "b.mp4") }]);
    } finally {
      await checker.close();
    }
  });
});
