/**
 * No shell anywhere in src/: every program vqd runs (nats-server, ffmpeg, ffprobe, exec steps,
 * systemd-notify) is started with spawn() and an argument list, so a file name can never become
 * a command. This test reads the sources and fails on any way of reaching a shell:
 *   - `shell:` set to anything but false (spawn, execFile, fork options),
 *   - child_process's exec/execSync (they always run /bin/sh -c), imported or called,
 *   - spawning sh/bash/dash/zsh with -c,
 * and, for SQL, on a query string built by interpolation (`prepare(\`...${x}\`)`, `exec(\`...${x}\`)`,
 * `sql.raw(...)`): values go through placeholders. (PRAGMA statements cannot take parameters; the
 * few there are interpolate numbers, and are not flagged.)
 *
 * The brief's one-liner, `grep -rn "shell: true\|exec(\|execSync(" src`, also matches RegExp's
 * `.exec(` and better-sqlite3's `db.exec("BEGIN IMMEDIATE")`, neither of which runs a shell, so
 * the check is done here with patterns that tell them apart.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const srcDir = join(repo, "src");

interface Finding {
  file: string;
  line: number;
  rule: string;
  text: string;
}

const RULES: { rule: string; test: (line: string, source: string) => boolean }[] = [
  { rule: "shell option", test: (l) => /\bshell\s*:(?!\s*false\b)/.test(l) },
  { rule: "child_process exec/execSync call", test: (l) => /\b(child_process|cp|childProcess)\s*\.\s*exec(Sync)?\s*\(/.test(l) || /(^|[^.\w])execSync\s*\(/.test(l) },
  { rule: "bare exec( call (child_process.exec)", test: (l, s) => importsExec(s) && /(^|[^.\w])exec\s*\(/.test(l) },
  { rule: "import of exec/execSync", test: (l) => /import\s*\{[^}]*\bexec(Sync)?\b(?!File)[^}]*\}\s*from\s*["'](node:)?child_process["']/.test(l) },
  { rule: "spawning a shell", test: (l) => /\b(spawn|spawnSync|execFile|execFileSync)\s*\(\s*["'`](\/usr)?(\/bin\/)?(ba|da|z|k|c|tc)?sh["'`]/.test(l) },
  { rule: "SQL built by interpolation", test: (l) => /\.(prepare|exec)\s*\(\s*`[^`]*\$\{/.test(l) || /\bsql\.(raw|lit)\s*\(/.test(l) },
];

function importsExec(source: string): boolean {
  return /import\s*\{[^}]*\bexec\b(?!File)[^}]*\}\s*from\s*["'](node:)?child_process["']/.test(source);
}

function scan(file: string, source: string): Finding[] {
  const findings: Finding[] = [];
  source.split("\n").forEach((raw, i) => {
    // Comments may talk about shells; only code counts. (Whole-line comments, and a trailing
    // ` // ...`; a URL's "://" has no space before it.)
    const trimmed = raw.trim();
    if (trimmed.startsWith("//") || trimmed.startsWith("*") || trimmed.startsWith("/*")) return;
    const text = raw.replace(/\s\/\/\s.*$/, "");
    for (const { rule, test } of RULES) if (test(text, source)) findings.push({ file, line: i + 1, rule, text: trimmed });
  });
  return findings;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(ts|js|mjs|cjs)$/.test(e.name) ? [p] : [];
  });
}

describe("no shell, no SQL built from strings", () => {
  it("src/ never reaches a shell and never interpolates into SQL", () => {
    const files = sources(srcDir);
    assert.ok(files.length > 20, `found only ${files.length} source files under ${srcDir}`);
    const findings = files.flatMap((f) => scan(relative(repo, f), readFileSync(f, "utf8")));
    assert.deepEqual(findings, [], findings.map((f) => `${f.file}:${f.line}: ${f.rule}: ${f.text}`).join("\n"));
    // The programs vqd does run are started with spawn (argument lists).
    const spawning = files.filter((f) => /from\s*["']node:child_process["']/.test(readFileSync(f, "utf8")));
    assert.ok(spawning.length >= 2, `expected the child_process users (embedded nats-server, pipeline processes): ${spawning.join(", ")}`);
  });

  it("the scanner catches each way of reaching a shell (so the test above would fail)", () => {
    const bad = [
      `spawn("ffmpeg", args, { shell: true });`,
      `spawn(cmd, { shell: "/bin/sh" });`,
      `import { exec } from "node:child_process";\nexec(\`ffmpeg -i \${file}\`);`,
      `import { execSync } from "child_process";`,
      `execSync("ls " + dir);`,
      `child_process.exec(cmd);`,
      `spawn("sh", ["-c", cmd]);`,
      `spawn("/bin/bash", ["-c", cmd]);`,
      "db.prepare(`SELECT * FROM videos WHERE path = '${path}'`);",
      "raw.exec(`DELETE FROM events WHERE id = ${id}`);",
      "sql.raw(userInput);",
    ];
    for (const snippet of bad) assert.notDeepEqual(scan("snippet.ts", snippet), [], snippet);
    const fine = [
      `spawn("ffmpeg", ["-i", input, output], { stdio: "pipe" });`,
      `spawn(binary, args, { shell: false });`,
      `const m = /x(\\d+)/.exec(line);`,
      `raw.exec("BEGIN IMMEDIATE");`,
      `db.prepare("SELECT path FROM videos WHERE id = ?").get(id);`,
      "raw.pragma(`busy_timeout = ${ms}`);",
      `import { spawn, execFile } from "node:child_process";`,
    ];
    for (const snippet of fine) assert.deepEqual(scan("snippet.ts", snippet), [], snippet);
  });
});
