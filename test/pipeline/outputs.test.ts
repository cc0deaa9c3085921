import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { cleanStaleTemps, isTempName, tempPathFor, writeAtomic } from "../../src/pipeline/index.js";
import { cleanupScratch, freshDir, listDir } from "./helpers.js";

after(cleanupScratch);

describe("atomic outputs", () => {
  test("temp names are hidden, in the same directory, and recognised", () => {
    const t = tempPathFor("/x/y/out.mp4");
    assert.equal(path.dirname(t), "/x/y");
    assert.match(path.basename(t), /^\.out\.mp4\.tmp-[0-9a-f]{12}$/);
    assert.ok(isTempName(path.basename(t)));
    assert.ok(!isTempName("out.mp4"));
    assert.notEqual(tempPathFor("/x/a"), tempPathFor("/x/a"));
  });

  test("writeAtomic: the final name appears only when complete; the directory is created", async () => {
    const dir = path.join(freshDir(), "v1");
    const final = path.join(dir, "a.txt");
    const result = await writeAtomic(final, async (temp) => {
      assert.equal(path.dirname(temp), dir);
      fs.writeFileSync(temp, "hello");
      assert.equal(fs.existsSync(final), false, "not visible before the rename");
      return 42;
    });
    assert.equal(result, 42);
    assert.equal(fs.readFileSync(final, "utf8"), "hello");
    assert.deepEqual(listDir(dir), ["a.txt"]);
  });

  test("writeAtomic: a failure removes the temp file and keeps an older output intact", async () => {
    const dir = freshDir();
    const final = path.join(dir, "a.txt");
    fs.writeFileSync(final, "old");
    await assert.rejects(
      writeAtomic(final, async (temp) => {
        fs.writeFileSync(temp, "partial");
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.deepEqual(listDir(dir), ["a.txt"]);
    assert.equal(fs.readFileSync(final, "utf8"), "old");
  });

  test("cleanStaleTemps removes leftovers (all, or of the named outputs) and nothing else", () => {
    const dir = freshDir();
    for (const name of ["thumbnail.jpg", ".thumbnail.jpg.tmp-0123456789ab", ".web-720p.mp4.tmp-abcdefabcdef", ".hidden", "x.tmp-1"]) {
      fs.writeFileSync(path.join(dir, name), "x");
    }
    assert.deepEqual(cleanStaleTemps(dir, ["web-720p.mp4"]), [".web-720p.mp4.tmp-abcdefabcdef"]);
    assert.deepEqual(cleanStaleTemps(dir), [".thumbnail.jpg.tmp-0123456789ab"]);
    assert.deepEqual(listDir(dir), [".hidden", "thumbnail.jpg", "x.tmp-1"]);
    assert.deepEqual(cleanStaleTemps(path.join(dir, "missing")), []);
  });
});
