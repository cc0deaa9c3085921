/**
 * The spawn helper (src/pipeline/spawn-helper.py) on its own, through its JSON-lines protocol,
 * and behind runProcess: where programs run, what they inherit, what happens when the helper
 * dies or cannot run. (runProcess's own behaviour in both modes: process.test.ts.)
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { configureSpawner, runProcess, spawnerMode } from "../../src/pipeline/index.js";
import { alive, pidsWithArg } from "../support/processes.js";
import { waitFor } from "../support/wait.js";
import { cleanupScratch, freshDir } from "./helpers.js";

const SCRIPT = fileURLToPath(new URL("../../src/pipeline/spawn-helper.py", import.meta.url));

/** Field `name` of /proc/<pid>/status. */
function status(pid: number, name: string): string {
  const line = fs
    .readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${name}:`));
  return line?.split(":")[1]?.trim() ?? "";
}

function parentOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** The helper started by hand, speaking its protocol. */
class RawHelper {
  readonly child: ChildProcessWithoutNullStreams;
  readonly events: Record<string, unknown>[] = [];
  stderr = "";

  constructor() {
    this.child = spawn("python3", ["-I", "-S", SCRIPT], { stdio: ["pipe", "pipe", "pipe"] });
    createInterface({ input: this.child.stdout, crlfDelay: Infinity }).on("line", (line) => this.events.push(JSON.parse(line) as Record<string, unknown>));
    this.child.stderr.setEncoding("utf8");
    this.child.stderr.on("data", (chunk: string) => (this.stderr += chunk));
  }

  send(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  of(id: number): Record<string, unknown>[] {
    return this.events.filter((e) => e.id === id);
  }

  async until(id: number, t: string): Promise<Record<string, unknown>> {
    await waitFor(() => this.of(id).some((e) => e.t === t), 3000, `event ${t} of request ${id}`);
    return this.of(id).find((e) => e.t === t) as Record<string, unknown>;
  }
}

describe("spawn helper protocol", () => {
  test("runs a program: spawn, its output, exit, then close; stdin is /dev/null", async () => {
    const h = new RawHelper();
    h.send(JSON.stringify({ op: "spawn", id: 1, file: "/bin/sh", argv: ["sh", "-c", "cat; echo out; echo err >&2; exit 3"], cwd: null, env: null }));
    await h.until(1, "close");
    const kinds = h.of(1).map((e) => e.t);
    assert.equal(kinds[0], "spawn");
    assert.deepEqual(kinds.slice(-2), ["exit", "close"]);
    assert.equal(h.of(1).filter((e) => e.t === "out").map((e) => e.d).join(""), "out\n");
    assert.equal(h.of(1).filter((e) => e.t === "err").map((e) => e.d).join(""), "err\n");
    assert.deepEqual(h.of(1).find((e) => e.t === "exit"), { id: 1, t: "exit", code: 3, signal: null });
    h.child.stdin.end();
    assert.deepEqual(await once(h.child, "exit"), [0, null]);
  });

  test("bad requests are answered with an error naming the problem; the helper keeps serving", async () => {
    const h = new RawHelper();
    h.send("this is not json");
    h.send(JSON.stringify({ no: "id" }));
    h.send(JSON.stringify({ op: "fork", id: 2 }));
    h.send(JSON.stringify({ op: "spawn", id: 3, file: "/bin/true", argv: "true" }));
    h.send(JSON.stringify({ op: "spawn", id: 4, file: "/bin/true", argv: ["true", 5] }));
    h.send(JSON.stringify({ op: "spawn", id: 5, file: "/nonexistent/program", argv: ["program"] }));
    h.send(JSON.stringify({ op: "spawn", id: 6, file: "/bin/true", argv: ["true"], cwd: "/nonexistent/dir" }));
    h.send(JSON.stringify({ op: "spawn", id: 7, file: "/bin/true", argv: ["true"], env: { A: 1 } }));
    h.send(JSON.stringify({ op: "spawn", id: 8, file: "/bin/sh", argv: ["sh", "-c", "echo $A"], env: { A: "from env" } }));
    await h.until(8, "close");
    assert.match(h.stderr, /malformed request .*this is not json/);
    assert.match(h.stderr, /malformed request/);
    assert.match(String((await h.until(2, "error")).message), /unknown op 'fork'/);
    assert.match(String((await h.until(3, "error")).message), /argv a list of strings/);
    assert.match(String((await h.until(4, "error")).message), /argv a list of strings/);
    assert.equal((await h.until(5, "error")).code, "ENOENT");
    const cwd = await h.until(6, "error");
    assert.equal(cwd.code, "ENOENT");
    assert.equal(cwd.syscall, "chdir");
    assert.equal((await h.until(7, "error")).t, "error");
    for (const id of [2, 3, 4, 5, 6, 7]) assert.equal(h.of(id).length, 1, `request ${id} gets one answer`);
    assert.equal(h.of(8).filter((e) => e.t === "out").map((e) => e.d).join(""), "from env\n");
    h.child.stdin.end();
    await once(h.child, "exit");
  });

  test("when its stdin ends, every program still running is killed with its process group", async () => {
    const h = new RawHelper();
    h.send(JSON.stringify({ op: "spawn", id: 1, file: "/bin/sh", argv: ["sh", "-c", "sleep 30 & echo $!; wait"] }));
    const leader = Number((await h.until(1, "spawn")).pid);
    await h.until(1, "out");
    const grandchild = Number(h.of(1).find((e) => e.t === "out")?.d);
    assert.ok(alive(leader) && alive(grandchild));
    h.child.stdin.end();
    await once(h.child, "exit");
    await waitFor(() => !alive(leader) && !alive(grandchild), 3000, "the program and its child to die");
  });
});

describe("spawn helper behind runProcess", () => {
  after(() => {
    configureSpawner({});
    cleanupScratch();
  });

  test("programs are children of the helper, in a session of their own, with no signal ignored or blocked", async () => {
    configureSpawner({});
    assert.equal(spawnerMode(), "helper");
    let info: { parent: string; pgid: string; sid: string; ignored: string; blocked: string } | undefined;
    await runProcess("sleep", ["0.3"], {
      onSpawn: (pid) => {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        info = {
          parent: fs.readFileSync(`/proc/${parentOf(pid)}/cmdline`, "utf8"),
          pgid: `${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]}/${pid}`,
          sid: `${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[3]}/${pid}`,
          ignored: status(pid, "SigIgn"),
          blocked: status(pid, "SigBlk"),
        };
      },
    });
    assert.ok(info);
    assert.match(info.parent, /spawn-helper\.py/);
    const [pgid, pid] = info.pgid.split("/");
    assert.equal(pgid, pid, "the program leads its own process group");
    const [sid] = info.sid.split("/");
    assert.equal(sid, pid, "... and its own session (one autogroup CPU share per program, as with Node's detached)");
    // Signals 1-31. (glibc's posix_spawn leaves its two internal signals, 32 and 33, ignored in
    // every program it starts; glibc installs their handlers when a program needs them.)
    const standard = (mask: string): bigint => BigInt(`0x${mask}`) & 0x7fffffffn;
    assert.equal(standard(info.ignored), 0n, `SIGPIPE and SIGXFSZ are not left ignored by python (SigIgn ${info.ignored})`);
    assert.equal(standard(info.blocked), 0n, `no signal blocked (SigBlk ${info.blocked})`);
  });

  test("output arrives whole and in order: 2 MB on stdout, many lines, bytes that are not UTF-8", async () => {
    const big = await runProcess("sh", ["-c", "head -c 2000000 /dev/zero | tr '\\0' a"], { stdoutBytes: 3_000_000 });
    assert.equal(big.stdout.length, 2_000_000);
    assert.ok(/^a+$/.test(big.stdout));
    const lines: string[] = [];
    await runProcess("seq", ["1", "20000"], { onStdoutLine: (l) => lines.push(l) });
    assert.equal(lines.length, 20000);
    assert.ok(lines.every((l, i) => l === String(i + 1)));
    const odd = await runProcess("printf", ["\\377ok\\303\\251"], { stdoutBytes: 100 });
    assert.equal(odd.stdout, "\ufffdok\u00e9");
  });

  test("exec-style runs: cwd and a chosen environment reach the program; a missing cwd is a clear error", async () => {
    const dir = freshDir("cwd");
    const r = await runProcess("sh", ["-c", "pwd; echo $ONLY; echo ${HOME:-no home}"], { cwd: dir, env: { ONLY: "this", PATH: process.env.PATH }, stdoutBytes: 1000 });
    assert.equal(r.stdout, `${fs.realpathSync(dir)}\nthis\nno home\n`);
    await assert.rejects(runProcess("true", [], { cwd: path.join(dir, "missing") }), /could not start true: .*working directory .*missing/);
  });

  test("if the helper dies, a running program is killed and reported killed; the next program starts a new helper", async () => {
    let pid = 0;
    const run = runProcess("sleep", ["30"], { onSpawn: (p) => (pid = p) });
    await waitFor(() => pid > 0, 3000, "the program to start");
    const helperPid = parentOf(pid);
    process.kill(helperPid, "SIGKILL");
    const r = await run;
    assert.equal(r.code, null);
    assert.equal(r.signal, "SIGKILL");
    assert.match(r.stderrTail, /spawn helper ended \(killed by SIGKILL\) while this program ran/);
    await waitFor(() => !alive(pid), 3000, "the orphaned program to die");
    const again = await runProcess("sh", ["-c", "echo $PPID"], { stdoutBytes: 100 });
    const next = Number(again.stdout.trim());
    assert.ok(next > 0 && next !== helperPid && next !== process.pid, `started by a new helper (${next}), not ${helperPid} or this process`);
    assert.equal(spawnerMode(), "helper");
  });

  test("if the helper dies after a program's exit but before the end of its output, the exit status stands", async () => {
    let grandchild = 0;
    let pid = 0;
    // The program exits at once; its background child keeps the pipes open, so "close" waits.
    const run = runProcess("sh", ["-c", "sleep 30 & echo $!; exit 0"], { onSpawn: (p) => (pid = p), onStdoutLine: (l) => (grandchild = Number(l)) });
    await waitFor(() => grandchild > 0, 3000, "the background child's pid");
    await waitFor(() => !alive(pid), 3000, "the program to exit");
    await sleep(100); // its exit reaches us; the output stays open for another ~0.9 s
    const helpers = pidsWithArg("spawn-helper.py").filter((p) => parentOf(p) === process.pid);
    assert.equal(helpers.length, 1, "this process's helper");
    process.kill(helpers[0] ?? 0, "SIGKILL");
    const r = await run;
    assert.equal(r.code, 0);
    assert.equal(r.signal, null);
    process.kill(grandchild, "SIGKILL");
  });

  test("without python3 on PATH, programs are started by Node's spawn", async () => {
    const bin = freshDir("bin");
    for (const tool of ["sh", "true"]) fs.symlinkSync(fs.realpathSync(`/bin/${tool}`), path.join(bin, tool));
    const lib = new URL("../../src/pipeline/index.js", import.meta.url).href;
    const script = [
      `import { runProcess, spawnerMode } from ${JSON.stringify(lib)};`,
      `const r = await runProcess("sh", ["-c", "echo ran"], { stdoutBytes: 100 });`,
      `console.log(spawnerMode(), r.stdout.trim());`,
    ].join("\n");
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { env: { PATH: bin }, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    await once(child, "exit");
    assert.equal(out.trim(), "node ran");
  });

  test("a helper that dies at once (a broken python3) loses no program: they are started by Node, and after three tries the helper is given up", async () => {
    const bin = freshDir("bin");
    for (const tool of ["sh", "true"]) fs.symlinkSync(fs.realpathSync(`/bin/${tool}`), path.join(bin, tool));
    fs.writeFileSync(path.join(bin, "python3"), "#!/bin/sh\necho 'python3: broken install' >&2\nexit 1\n", { mode: 0o755 });
    const lib = new URL("../../src/pipeline/index.js", import.meta.url).href;
    const script = [
      `import { configureSpawner, runProcess, spawnerMode } from ${JSON.stringify(lib)};`,
      `const warnings = [];`,
      `const log = { info() {}, debug() {}, trace() {}, error() {}, fatal() {}, warn: (o, m) => warnings.push(m + " / " + o.reason), child() { return log; } };`,
      `configureSpawner({ log });`,
      `const out = [];`,
      `for (let i = 0; i < 5; i++) out.push((await runProcess("sh", ["-c", "echo run-" + i + " $PPID"], { stdoutBytes: 100 })).stdout.trim());`,
      `console.log(JSON.stringify({ out, mode: spawnerMode(), warnings }));`,
    ].join("\n");
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { env: { PATH: bin }, stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const [code] = (await once(child, "exit")) as [number];
    assert.equal(code, 0);
    const result = JSON.parse(stdout) as { out: string[]; mode: string; warnings: string[] };
    assert.deepEqual(
      result.out.map((l) => l.split(" ")[0]),
      ["run-0", "run-1", "run-2", "run-3", "run-4"],
    );
    assert.ok(result.out.every((l) => l.endsWith(` ${child.pid}`)), `all started by the Node process itself: ${result.out.join(", ")}`);
    assert.equal(result.mode, "node");
    assert.equal(result.warnings.length, 3);
    assert.match(result.warnings[0] ?? "", /spawn helper exited; it is restarted on the next program \/ exited with code 1: python3: broken install/);
    assert.match(result.warnings[2] ?? "", /spawn helper failed again; step programs are started by forking the daemon from now on/);
  });

  test("configureSpawner({ helper: false }) switches to Node's spawn, and back", async () => {
    configureSpawner({ helper: false });
    assert.equal(spawnerMode(), "node");
    const r = await runProcess("sh", ["-c", "echo $PPID"], { stdoutBytes: 100 });
    assert.equal(Number(r.stdout.trim()), process.pid);
    configureSpawner({ helper: true });
    assert.equal(spawnerMode(), "helper");
  });
});
