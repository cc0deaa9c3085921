import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { isConfigError, loadConfig } from "../../src/config/index.js";
import { globToRegExp, isTemporaryName, nameMatcher } from "../../src/intake/index.js";
import { tempDir } from "./inbox-helpers.js";

let base: string;
before(() => {
  base = tempDir("vqd-inbox-config-");
});
after(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

describe("inbox file names", () => {
  test("patterns match base names case-insensitively, with * ? [..] and {a,b}; everything else is literal", () => {
    const m = nameMatcher(["*.mp4", "clip-??.{mov,mkv}", "[!x]*.webm"]);
    for (const name of ["a.mp4", "LOUD.MP4", "a b (1)+.mp4", ".mp4", "clip-01.mov", "CLIP-ab.MKV", "y.webm"]) assert.ok(m(name), name);
    for (const name of ["a.mp4.part", "a.mp40", "amp4", "clip-1.mov", "clip-001.mov", "x.webm", "a.mov"]) assert.ok(!m(name), name);
    assert.ok(globToRegExp("a+b(1)[x].mp4").test("a+b(1)x.mp4"));
    assert.ok(!globToRegExp("a.mp4").test("aXmp4"), "a dot is a dot");
    assert.ok(globToRegExp("[a-c]?.*").test("B1.mov"));
  });

  test("temporary and hidden names are recognised", () => {
    for (const name of [".x.mp4", ".x.mp4.Ab12Cd", "x.mp4.part", "x.MP4.PART", "x.tmp", "x.crdownload", "x.mp4.filepart", "x.mp4~", "~$x.mp4", "x.partial"]) {
      assert.ok(isTemporaryName(name), name);
    }
    for (const name of ["x.mp4", "party.mp4", "x.mov", "tmp.mp4"]) assert.ok(!isTemporaryName(name), name);
  });
});

describe("inboxes in the config", () => {
  function load(yaml: string, env: NodeJS.ProcessEnv = {}) {
    const file = path.join(base, `c-${Math.random().toString(36).slice(2)}.yaml`);
    fs.writeFileSync(file, yaml);
    return loadConfig({ file, env, cwd: base });
  }

  function keyOf(fn: () => unknown): string {
    try {
      fn();
    } catch (e) {
      assert.ok(isConfigError(e), String(e));
      return e.keyPath;
    }
    assert.fail("expected a ConfigError");
  }

  test("an inbox gets defaults for the keys left out", () => {
    const c = load("inboxes:\n  - folder: in\n");
    assert.deepEqual(c.inboxes, [
      {
        folder: "in",
        patterns: ["*.mp4", "*.mov", "*.mkv", "*.m4v", "*.webm", "*.avi"],
        settleMs: 2000,
        recursive: false,
        doneFolder: "",
        failedFolder: "",
        rescanMs: 60000,
      },
    ]);
    assert.ok(Object.isFrozen(c.inboxes[0]));
    const fromEnv = loadConfig({ env: { VQD_INBOXES: "[{folder: /srv/in, lane: low, settleMs: 500}]" }, cwd: base });
    assert.equal(fromEnv.inboxes[0]?.lane, "low");
    assert.equal(fromEnv.inboxes[0]?.settleMs, 500);
  });

  test("bad inbox values name their key", () => {
    assert.equal(keyOf(() => load("inboxes:\n  - folder: in\n    settleMs: 5\n")), "inboxes[0].settleMs");
    assert.equal(keyOf(() => load("inboxes:\n  - folder: in\n  - folder: b\n    patterns: [a/b.mp4]\n")), "inboxes[1].patterns[0]");
    assert.equal(keyOf(() => load("inboxes:\n  - folder: in\n    patterns: []\n")), "inboxes[0].patterns");
    assert.equal(keyOf(() => load("inboxes:\n  - pipeline: noop\n")), "inboxes[0].folder");
    assert.equal(keyOf(() => load("inboxes:\n  - folder: in\n    lane: urgent\n")), "inboxes[0].lane");
    assert.equal(keyOf(() => load("inboxes:\n  - folder: in\n    folders: x\n")), "inboxes[0].folders");
    assert.equal(keyOf(() => load("inboxes: {folder: in}\n")), "inboxes");
  });
});
