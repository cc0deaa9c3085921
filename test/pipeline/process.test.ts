import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { configureSpawner, runChecked, runProcess, spawnerMode, StepAbortedError } from "../../src/pipeline/index.js";
import { stepError } from "./helpers.js";
import { alive, reaped } from "../support/processes.js";

// These tests start `sh` as the program under test; the code under test never uses a shell itself.
// They run twice: programs started by the spawn helper (the default), and by Node's spawn.

for (const mode of ["helper", "node"] as const) describe(`runProcess (started by ${mode === "helper" ? "the spawn helper" : "Node's spawn"})`, () => {
  before(() => {
    configureSpawner({ helper: mode === "helper" });
    assert.equal(spawnerMode(), mode);
  });
  after(() => configureSpawner({}));

  test("resolves with the exit code, stdout lines and the stderr tail", async () => {
    const lines: string[] = [];
    const r = await runProcess("sh", ["-c", 'printf "a=1\\nb=2\\npartial"; echo oops >&2; exit 3'], { onStdoutLine: (l) => lines.push(l) });
    assert.equal(r.code, 3);
    assert.equal(r.signal, null);
    assert.equal(r.stderrTail.trim(), "oops");
    assert.deepEqual(lines, ["a=1", "b=2", "partial"]);
  });

  test("arguments are passed verbatim, never through a shell", async () => {
    const tricky = "$(touch /tmp/vqd-should-not-exist); `id` ; * | && \"'";
    const r = await runProcess("printf", ["%s", tricky], { stdoutBytes: 1000 });
    assert.equal(r.stdout, tricky);
  });

  test("keeps only the tail of a long stderr", async () => {
    const r = await runProcess("sh", ["-c", "i=0; while [ $i -lt 2000 ]; do echo line-$i >&2; i=$((i+1)); done; echo last >&2"], { stderrTailBytes: 256 });
    assert.ok(r.stderrTail.length <= 256);
    assert.match(r.stderrTail, /last\n$/);
  });

  test("a missing binary is a non-retryable error naming it and how to install it", async () => {
    const err = await stepError(runProcess("vqd-no-such-ffmpeg", ["-version"], { label: "ffmpeg", installHint: "install it with apt-get install ffmpeg" }), {
      retryable: false,
    });
    assert.match(err.message, /command not found: vqd-no-such-ffmpeg/);
    assert.match(err.message, /apt-get install ffmpeg/);
  });

  test("runChecked: a non-zero exit is a retryable StepError carrying the stderr tail, unless classified", async () => {
    const err = await stepError(runChecked("sh", ["-c", "echo first >&2; echo 'disk on fire' >&2; exit 2"], { label: "tool" }), { retryable: true });
    assert.match(err.message, /tool exited with code 2: first \| disk on fire/);
    await stepError(runChecked("sh", ["-c", "exit 1"], { classify: () => ({ retryable: false, message: "bad input" }) }), {
      retryable: false,
      message: /^bad input$/,
    });
  });

  test("abort kills the whole process group and rejects with StepAbortedError", async () => {
    const ac = new AbortController();
    const pids: number[] = [];
    let leader = 0;
    const p = runProcess("sh", ["-c", "sleep 30 & echo $!; sleep 30 & echo $!; wait"], {
      signal: ac.signal,
      onSpawn: (pid) => (leader = pid),
      onStdoutLine: (l) => {
        pids.push(Number(l));
        if (pids.length === 2) ac.abort("cancelled");
      },
    });
    await assert.rejects(p, (e: unknown) => e instanceof StepAbortedError && e.retryable && /cancelled/.test(e.message));
    assert.ok(leader > 0);
    assert.ok(reaped(leader), "the direct child is gone and reaped");
    await sleep(50);
    for (const pid of pids) assert.equal(alive(pid), false, `grandchild ${pid} survived`);
  });

  test("a process ignoring SIGTERM gets SIGKILL after the grace period", async () => {
    const ac = new AbortController();
    let pid = 0;
    const t0 = Date.now();
    const p = runProcess("sh", ["-c", 'trap "" TERM; echo ready; sleep 30; sleep 30'], {
      signal: ac.signal,
      killGraceMs: 200,
      onSpawn: (x) => (pid = x),
      onStdoutLine: () => ac.abort("shutdown"),
    });
    await assert.rejects(p, StepAbortedError);
    assert.ok(Date.now() - t0 >= 200);
    assert.ok(reaped(pid));
  });

  test("an already aborted signal spawns nothing", async () => {
    const ac = new AbortController();
    ac.abort("cancelled");
    let spawned = false;
    await assert.rejects(runProcess("sleep", ["5"], { signal: ac.signal, onSpawn: () => (spawned = true) }), StepAbortedError);
    assert.equal(spawned, false);
  });

  test("a timeout kills the process and is retryable", async () => {
    let pid = 0;
    const err = await stepError(runProcess("sleep", ["30"], { timeoutMs: 150, onSpawn: (x) => (pid = x) }), { retryable: true, message: /timed out after 150 ms/ });
    assert.ok(!(err instanceof StepAbortedError));
    assert.equal(alive(pid), false);
  });

  test("silence on stdout for stallTimeoutMs kills the process: retryable 'stalled'", async () => {
    let pid = 0;
    const lines: string[] = [];
    const started = Date.now();
    await stepError(
      runProcess("sh", ["-c", "for i in 1 2 3; do echo tick; sleep 0.05; done; sleep 30"], {
        stallTimeoutMs: 300,
        onSpawn: (x) => (pid = x),
        onStdoutLine: (l) => lines.push(l),
      }),
      { retryable: true, message: /stalled: .* no progress for 300 ms/ },
    );
    assert.deepEqual(lines, ["tick", "tick", "tick"]);
    assert.ok(Date.now() - started >= 400, "output kept it alive at first");
    assert.equal(alive(pid), false);
  });

  test("a normal exit clears the timers (or this test file would not end for 10 s)", async () => {
    const ac = new AbortController();
    const r = await runProcess("true", [], { timeoutMs: 10_000, stallTimeoutMs: 10_000, signal: ac.signal });
    assert.equal(r.code, 0);
    ac.abort("late"); // no effect after the end
  });

  test("kill -9 of the process running a step leaves no orphan ffmpeg", async () => {
    const lib = new URL("../../src/pipeline/index.js", import.meta.url).href;
    const script = [
      `import { configureSpawner, runProcess } from ${JSON.stringify(lib)};`,
      `configureSpawner({ helper: ${mode === "helper"} });`,
      `runProcess("ffmpeg", ["-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5", "-f", "null", "-"], { onSpawn: (pid) => console.log(pid) }).catch(() => {});`,
    ].join("\n");
    const daemon = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    const [chunk] = (await once(daemon.stdout, "data")) as [Buffer];
    const ffmpegPid = Number(chunk.toString().trim());
    assert.ok(ffmpegPid > 0 && alive(ffmpegPid), "ffmpeg is running");
    daemon.kill("SIGKILL");
    await once(daemon, "exit");
    for (let i = 0; i < 50 && alive(ffmpegPid); i++) await sleep(20);
    assert.equal(alive(ffmpegPid), false, "ffmpeg died with its parent");
  });
});
