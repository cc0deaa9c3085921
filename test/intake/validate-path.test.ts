import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { InputError, validateVideoPath, type InputProblem } from "../../src/intake/index.js";

// Every case runs on real files in a temp dir: symlinks, FIFOs and permissions are the point.
let base: string; // realpath of the temp dir (os.tmpdir() may itself be a symlink)
let root: string; // the allowed root
let outside: string; // a sibling of the root, not allowed
let roots: string[];

before(() => {
  base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "vqd-intake-")));
  root = path.join(base, "videos");
  outside = path.join(base, "outside");
  fs.mkdirSync(path.join(root, "sub"), { recursive: true });
  fs.mkdirSync(outside);
  fs.mkdirSync(path.join(base, "etc"));
  roots = [root];
});

after(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

/** Creates a small file (and its parent folders) and returns its path. */
function file(p: string, content = "not really a video"): string {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  return p;
}

/** Asserts that validation refuses `input` with an InputError of the given problem, message matching `message`. */
async function refused(input: string, problem: InputProblem, message: RegExp, allowed: readonly string[] = roots, cwd = base): Promise<InputError> {
  let caught: unknown;
  try {
    await validateVideoPath(input, allowed, cwd);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof InputError, `expected an InputError for ${JSON.stringify(input)}, got ${String(caught)}`);
  assert.equal(caught.problem, problem, caught.message);
  assert.equal(caught.input, input);
  assert.match(caught.message, message);
  return caught;
}

describe("validateVideoPath: accepted", () => {
  test("a regular file inside the root returns its real path", async () => {
    const p = file(path.join(root, "good.mp4"));
    assert.equal(await validateVideoPath(p, roots, base), p);
  });

  test("a relative path resolves against cwd", async () => {
    const p = file(path.join(root, "sub", "relative.mp4"));
    assert.equal(await validateVideoPath("videos/sub/relative.mp4", roots, base), p);
    assert.equal(await validateVideoPath("./relative.mp4", roots, path.join(root, "sub")), p);
  });

  test("`..` that stays inside the root is fine and is normalised away", async () => {
    const p = file(path.join(root, "dots.mp4"));
    assert.equal(await validateVideoPath(path.join(root, "sub") + "/../dots.mp4", roots, base), p);
  });

  test("a symlink inside the root pointing inside returns the target", async () => {
    const target = file(path.join(root, "sub", "target.mp4"));
    const link = path.join(root, "inside-link.mp4");
    fs.symlinkSync(target, link);
    assert.equal(await validateVideoPath(link, roots, base), target);
  });

  test("a root that is itself a symlink works, through the link and through the real path", async () => {
    const realRoot = path.join(base, "real-root");
    const p = file(path.join(realRoot, "clip.mp4"));
    const linkRoot = path.join(base, "link-root");
    fs.symlinkSync(realRoot, linkRoot);
    assert.equal(await validateVideoPath(path.join(linkRoot, "clip.mp4"), [linkRoot], base), p);
    assert.equal(await validateVideoPath(p, [linkRoot], base), p);
  });

  test("a root that does not exist is skipped, the others still apply", async () => {
    const p = file(path.join(root, "other-root.mp4"));
    assert.equal(await validateVideoPath(p, [path.join(base, "no-such-root"), root], base), p);
  });

  test("a file name that starts with `..` is inside the root", async () => {
    const p = file(path.join(root, "..hidden.mp4"));
    assert.equal(await validateVideoPath(p, roots, base), p);
  });
});

describe("validateVideoPath: refused", () => {
  test("a missing file", async () => {
    await refused(path.join(root, "missing.mp4"), "missing", /no such file: ".*missing\.mp4"/);
  });

  test("a path through a regular file (ENOTDIR) is missing", async () => {
    const p = file(path.join(root, "plain.mp4"));
    await refused(`${p}/x.mp4`, "missing", /no such file/);
  });

  test("a directory, including the root itself", async () => {
    await refused(path.join(root, "sub"), "not-a-file", /not a regular file: ".*sub" is a directory/);
    await refused(root, "not-a-file", /not a regular file: .* is a directory/);
    await refused(root + "/", "not-a-file", /is a directory/);
  });

  test("a file outside the roots", async () => {
    const p = file(path.join(outside, "x.mp4"));
    const err = await refused(p, "outside-roots", /outside the allowed roots/);
    assert.ok(err.message.includes(JSON.stringify(root)), err.message);
  });

  test("a sibling folder whose name starts with the root's name is outside", async () => {
    const p = file(`${root}2/x.mp4`);
    await refused(p, "outside-roots", /outside the allowed roots/);
  });

  test("`..` traversal out of the root (root/sub/../../etc/x) is refused", async () => {
    file(path.join(base, "etc", "x"));
    await refused(`${root}/sub/../../etc/x`, "outside-roots", /outside the allowed roots/);
    await refused("videos/sub/../../etc/x", "outside-roots", /outside the allowed roots/);
    // Deep enough to reach the real /etc.
    const up = "../".repeat(base.split("/").length + 2);
    await refused(`${root}/${up}etc/passwd`, "outside-roots", /outside the allowed roots/);
  });

  test("a symlink inside the root pointing outside is refused and names where it resolves to", async () => {
    const target = file(path.join(outside, "secret.mp4"));
    const link = path.join(root, "escape.mp4");
    fs.symlinkSync(target, link);
    const err = await refused(link, "outside-roots", /resolves to/);
    assert.ok(err.message.includes(JSON.stringify(target)), err.message);
  });

  test("a symlinked folder inside the root pointing outside is refused", async () => {
    file(path.join(outside, "deep", "a.mp4"));
    const link = path.join(root, "escape-dir");
    fs.symlinkSync(path.join(outside, "deep"), link);
    await refused(path.join(link, "a.mp4"), "outside-roots", /resolves to/);
  });

  test("a symlink loop", async () => {
    const a = path.join(root, "loop-a");
    const b = path.join(root, "loop-b");
    fs.symlinkSync(b, a);
    fs.symlinkSync(a, b);
    await refused(a, "invalid", /symlink loop/);
  });

  test("no allowedRoots configured refuses everything, even a good file", async () => {
    const p = file(path.join(root, "no-roots.mp4"));
    await refused(p, "no-roots", /no allowedRoots are configured/, []);
  });

  test("a NUL byte in the path", async () => {
    await refused(path.join(root, "a\0b.mp4"), "invalid", /NUL byte/);
  });

  test("an empty path", async () => {
    await refused("", "invalid", /empty path/);
  });

  test("an unreadable file (chmod 000)", async (t) => {
    if (process.getuid?.() === 0) {
      t.skip("running as root: access(R_OK) succeeds whatever the mode bits say");
      return;
    }
    const p = file(path.join(root, "locked.mp4"));
    fs.chmodSync(p, 0o000);
    try {
      await refused(p, "unreadable", /cannot read .*permission denied/);
    } finally {
      fs.chmodSync(p, 0o644);
    }
  });

  test("a FIFO is not a regular file", async () => {
    const fifo = path.join(root, "pipe.mp4");
    execFileSync("mkfifo", [fifo]);
    // Must not open it (that would block until a writer appears).
    await refused(fifo, "not-a-file", /not a regular file: .* is a special file/);
  });

  test("a name longer than the file-system limit (256 bytes) is refused, not thrown raw", async () => {
    const input = path.join(root, "n".repeat(256) + ".mp4");
    await assert.rejects(validateVideoPath(input, roots, base), (err: unknown) => {
      assert.ok(err instanceof InputError, String(err));
      assert.ok(err.message.includes(JSON.stringify(input)), err.message);
      return true;
    });
  });
});

describe("validateVideoPath: hostile names are plain file names", () => {
  const names: readonly [string, string][] = [
    ["double and single quotes", `it's a "quoted" name.mp4`],
    ["SQL injection", `'; DROP TABLE events; --.mp4`],
    ["shell metacharacters", "$(touch pwned) `id` & | ; > <.mp4"],
    ["emoji", "🎬 film 🍿.mp4"],
    ["right-to-left text and override", "סרט \u202Egpj.mp4"],
    ["combining characters", "cafe\u0301 vs caf\u00e9.mp4"],
    ["leading dash", "--json.mp4"],
    ["backslashes and percent", "a\\b %s %n.mp4"],
    ["newline and escape", "line\nbreak \u001b[31mred.mp4"],
  ];
  for (const [what, name] of names) {
    test(`${what}: ${JSON.stringify(name)}`, async () => {
      const p = file(path.join(root, "hostile", name));
      assert.equal(await validateVideoPath(p, roots, base), p);
    });
  }

  test("a 250-byte name (ASCII and multi-byte)", async () => {
    const ascii = "a".repeat(246) + ".mp4";
    const multi = "é".repeat(123) + ".mp4"; // 2 bytes per é
    for (const name of [ascii, multi]) {
      assert.equal(Buffer.byteLength(name), 250);
      const p = file(path.join(root, "long-names", name));
      assert.equal(await validateVideoPath(p, roots, base), p);
    }
  });

  test("a path of more than 1,000 characters through nested folders", async () => {
    const segments = Array.from({ length: 6 }, (_, i) => `${i}${"d".repeat(199)}`);
    const p = file(path.join(root, "nested", ...segments, "v".repeat(200) + ".mp4"));
    assert.ok(p.length > 1000, `path is ${p.length} characters`);
    assert.equal(await validateVideoPath(p, roots, base), p);
    // Relative from deep inside works too.
    assert.equal(await validateVideoPath("v".repeat(200) + ".mp4", roots, path.dirname(p)), p);
  });
});
