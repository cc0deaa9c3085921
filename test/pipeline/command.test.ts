import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { resolveCommand } from "../../src/pipeline/command.js";
import { StepError } from "../../src/pipeline/index.js";
import { cleanupScratch, freshDir } from "./helpers.js";

after(cleanupScratch);

/** A PATH of three fresh folders; `put(i, name)` writes an executable script into folder i. */
function fakePath(): { env: NodeJS.ProcessEnv; dirs: string[]; put: (i: number, name: string, mode?: number) => string } {
  const root = freshDir();
  const dirs = ["a", "b", "c"].map((d) => path.join(root, d));
  for (const d of dirs) fs.mkdirSync(d);
  return {
    env: { PATH: dirs.join(":") },
    dirs,
    put(i, name, mode = 0o755) {
      const file = path.join(dirs[i] as string, name);
      fs.writeFileSync(file, "#!/bin/sh\nexit 0\n", { mode });
      fs.chmodSync(file, mode);
      return file;
    },
  };
}

function notFound(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof StepError && !e.retryable && message.test(e.message));
}

describe("resolveCommand", () => {
  test("finds a name in the first PATH entry that holds it", () => {
    const p = fakePath();
    p.put(2, "tool-x");
    const second = p.put(1, "tool-x");
    assert.equal(resolveCommand("tool-x", { env: p.env }), second);
  });

  test("a remembered program is checked at each use: once gone, PATH is walked again", () => {
    const p = fakePath();
    const first = p.put(0, "tool-y");
    const later = p.put(2, "tool-y");
    assert.equal(resolveCommand("tool-y", { env: p.env }), first);
    fs.rmSync(first);
    assert.equal(resolveCommand("tool-y", { env: p.env }), later);
    fs.rmSync(later);
    notFound(() => resolveCommand("tool-y", { env: p.env, installHint: "install tool-y" }), /command not found: tool-y; install tool-y/);
    // Put back: found again (a failed lookup is not remembered).
    const back = p.put(1, "tool-y");
    assert.equal(resolveCommand("tool-y", { env: p.env }), back);
  });

  test("lookups are per PATH: the same name under another PATH is looked up there", () => {
    const p = fakePath();
    const q = fakePath();
    const inP = p.put(0, "tool-z");
    const inQ = q.put(1, "tool-z");
    assert.equal(resolveCommand("tool-z", { env: p.env }), inP);
    assert.equal(resolveCommand("tool-z", { env: q.env }), inQ);
    assert.equal(resolveCommand("tool-z", { env: p.env }), inP);
  });

  test("a remembered program that lost its execute bit is not used", () => {
    const p = fakePath();
    const file = p.put(0, "tool-w");
    assert.equal(resolveCommand("tool-w", { env: p.env }), file);
    fs.chmodSync(file, 0o644);
    notFound(() => resolveCommand("tool-w", { env: p.env }), /permission denied running .*tool-w/);
  });

  test("a folder or a file that is not executable is not a program", () => {
    const p = fakePath();
    fs.mkdirSync(path.join(p.dirs[0] as string, "tool-d"));
    notFound(() => resolveCommand("tool-d", { env: p.env }), /command not found: tool-d/);
    // (Root too: access(X_OK) needs at least one execute bit.)
    p.put(1, "tool-d", 0o644);
    notFound(() => resolveCommand("tool-d", { env: p.env }), /permission denied running .*tool-d/);
  });

  test("a path is resolved against cwd and never looked up in PATH", () => {
    const p = fakePath();
    p.put(0, "tool-v");
    const rel = p.put(1, "tool-v");
    assert.equal(resolveCommand("./tool-v", { cwd: p.dirs[1], env: p.env }), rel);
    notFound(() => resolveCommand("./tool-v", { cwd: p.dirs[2], env: p.env, label: "tool" }), /tool: command not found: \.\/tool-v/);
  });
});
