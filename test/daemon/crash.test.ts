/**
 * Crash tests: `vqd start` as a child process, killed with SIGKILL at random moments, and the
 * nats-server under it killed (and wiped). Invariants checked against the SQLite file itself:
 *   2. every id the CLI handed out exists;
 *   3. every video reaches exactly one terminal state with exactly one VideoCompleted event.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import BetterSqlite3 from "better-sqlite3";
import { freePort } from "../support/ports.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { makeVqdEnv, type DaemonProcess, type VqdEnv } from "../support/vqd-env.js";
import { waitFor as poll } from "../support/wait.js";
import { alive } from "../support/processes.js";

/** Short jobs so that some are always in flight, short NATS timers so recovery fits in a test. */
const CRASH_ENV: Readonly<Record<string, string>> = {
  VQD_WORKERS__COUNT: "3",
  VQD_NATS__ACKWAITMS: "3000",
  VQD_WORKERS__HEARTBEATMS: "1000",
  VQD_NATS__RECONCILEINTERVALMS: "2000",
  VQD_NATS__OUTBOXPOLLMS: "500",
  VQD_PIPELINES__CRASH: "{steps: [{step: sleep, options: {ms: 50}}]}",
  VQD_DEFAULTPIPELINE: "crash",
};

const randomBetween = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1));

/** Everything a scenario starts, so afterEach can take it all down whatever happened. */
const envs: VqdEnv[] = [];
const servers: TestNatsServer[] = [];
const embeddedPids: number[] = [];

afterEach(async () => {
  for (const env of envs.splice(0)) {
    const pid = await embeddedNatsPid(env).catch(() => null);
    if (pid) embeddedPids.push(pid);
    await env.cleanup();
  }
  for (const pid of embeddedPids.splice(0)) killQuietly(pid);
  for (const s of servers.splice(0)) await s.stop();
});

async function newServer(): Promise<TestNatsServer> {
  const s = await startNatsServer();
  servers.push(s);
  return s;
}

async function newEnv(natsUrl: string | undefined, extra: Record<string, string> = {}): Promise<VqdEnv> {
  const env = await makeVqdEnv({ ...(natsUrl ? { natsUrl } : {}), extra: { ...CRASH_ENV, ...extra } });
  envs.push(env);
  return env;
}

async function startDaemon(env: VqdEnv): Promise<DaemonProcess> {
  const d = env.spawnDaemon();
  await d.ready(20_000);
  return d;
}

async function kill9(d: DaemonProcess): Promise<void> {
  d.child.kill("SIGKILL");
  assert.equal(await d.exited(), "SIGKILL");
}

/** SIGTERM and wait: a clean stop must exit 0. */
async function stopDaemon(d: DaemonProcess): Promise<void> {
  d.child.kill("SIGTERM");
  assert.equal(await d.exited(), 0, `daemon did not exit cleanly:\n${tail(d.output())}`);
}

/** Enqueues n new files through the CLI (daemon API, or the store when no daemon answers). */
async function enqueue(env: VqdEnv, n: number): Promise<string[]> {
  const files = await env.videos(n);
  const r = await env.cli(["enqueue", "--json", ...files], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, `enqueue failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  const outcomes = JSON.parse(r.stdout) as { id?: string; error?: string }[];
  assert.equal(outcomes.length, n);
  return outcomes.map((o) => {
    assert.ok(o.id, `enqueue refused a file: ${o.error}`);
    return o.id;
  });
}

function openRecord(env: VqdEnv): BetterSqlite3.Database {
  return new BetterSqlite3(join(env.dataDir, "vqd.db"), { readonly: true, fileMustExist: true });
}

/** Polls the record until every video is terminal; fails with the stragglers and the daemon's log. */
async function waitAllTerminal(env: VqdEnv, expected: number, timeoutMs: number, log: () => string): Promise<void> {
  const db = openRecord(env);
  try {
    const q = db.prepare(`SELECT id, state FROM videos WHERE state NOT IN ('completed', 'dead', 'cancelled')`);
    const total = db.prepare(`SELECT count(*) AS n FROM videos`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const open = q.all() as { id: string; state: string }[];
      const n = (total.get() as { n: number }).n;
      if (open.length === 0 && n >= expected) return;
      if (Date.now() > deadline) {
        assert.fail(`${open.length} of ${n} videos not terminal after ${timeoutMs} ms: ${JSON.stringify(open.slice(0, 10))}\n--- daemon log ---\n${tail(log())}`);
      }
      await sleep(200);
    }
  } finally {
    db.close();
  }
}

/** Invariants 2 and 3, read from the SQLite file itself. */
function assertExactlyOnce(env: VqdEnv, ids: readonly string[]): void {
  const db = openRecord(env);
  try {
    const states = new Map((db.prepare(`SELECT id, state FROM videos`).all() as { id: string; state: string }[]).map((r) => [r.id, r.state]));
    const completions = new Map(
      (db.prepare(`SELECT stream_id, count(*) AS n FROM events WHERE type = 'VideoCompleted' GROUP BY stream_id`).all() as { stream_id: string; n: number }[]).map((r) => [r.stream_id, r.n]),
    );
    const terminalEvents = new Map(
      (
        db
          .prepare(`SELECT stream_id, count(*) AS n FROM events WHERE type IN ('VideoCompleted', 'VideoDeadLettered', 'VideoCancelled') GROUP BY stream_id`)
          .all() as { stream_id: string; n: number }[]
      ).map((r) => [r.stream_id, r.n]),
    );
    assert.equal(new Set(ids).size, ids.length, "the CLI handed out an id twice");
    const missing = ids.filter((id) => !states.has(id));
    assert.deepEqual(missing, [], "accepted enqueues lost (invariant 2)");
    // Every video in the record, including any the CLI recorded again after a timed-out request.
    for (const [id, state] of states) {
      assert.equal(state, "completed", `video ${id} is ${state}`);
      assert.equal(completions.get(id), 1, `video ${id} has ${completions.get(id) ?? 0} VideoCompleted events`);
      assert.equal(terminalEvents.get(id), 1, `video ${id} has ${terminalEvents.get(id) ?? 0} terminal events`);
    }
    for (const id of completions.keys()) assert.ok(states.has(id), `VideoCompleted for unknown video ${id}`);
  } finally {
    db.close();
  }
}

/** Videos not yet terminal, right now. */
function openCount(env: VqdEnv): number {
  const db = openRecord(env);
  try {
    return (db.prepare(`SELECT count(*) AS n FROM videos WHERE state NOT IN ('completed', 'dead', 'cancelled')`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Videos with more than one AttemptStarted: a kill interrupted them mid-step. */
function restartedCount(env: VqdEnv): number {
  const db = openRecord(env);
  try {
    const sql = `SELECT count(*) AS n FROM (SELECT stream_id FROM events WHERE type = 'AttemptStarted' GROUP BY stream_id HAVING count(*) > 1)`;
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** How many jobs the reconciler republished, from the daemon's log. */
function republishedCount(log: string): number {
  let n = 0;
  for (const m of log.matchAll(/"count":(\d+)[^\n]*jobs missing from NATS/g)) n += Number(m[1]);
  return n;
}

function tail(text: string, lines = 60): string {
  return text.split("\n").slice(-lines).join("\n");
}

async function embeddedNatsPid(env: VqdEnv): Promise<number | null> {
  try {
    const info = JSON.parse(await readFile(join(env.dataDir, "run", "nats.json"), "utf8")) as { pid?: number };
    return typeof info.pid === "number" ? info.pid : null;
  } catch {
    return null;
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

const waitFor = <T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined | false> | T | null | undefined | false): Promise<T> =>
  poll(probe, timeoutMs, what, 50);

describe("daemon crash recovery", { timeout: 85_000 }, () => {
  it("kill -9 of the daemon three times while 200 jobs run: none lost, each completed exactly once", async (t) => {
    const server = await newServer();
    const env = await newEnv(server.url, { VQD_WORKERS__COUNT: "2" });
    const ids: string[] = [];
    const logs: string[] = [];
    let d = await startDaemon(env);
    // A backlog first (~40 jobs/s with 2 workers and 50 ms steps), so every kill lands mid-run.
    ids.push(...(await enqueue(env, 60)), ...(await enqueue(env, 60)));
    const openAtKill: number[] = [];
    for (let round = 0; round < 3; round++) {
      // Enqueue while the kill timer runs: the kill may land during the request itself.
      const delay = randomBetween(200, 1500);
      const batch = enqueue(env, 20);
      await sleep(delay);
      openAtKill.push(openCount(env));
      await kill9(d);
      logs.push(d.output());
      ids.push(...(await batch));
      if (round === 1) ids.push(...(await enqueue(env, 20))); // daemon down: the CLI records them itself
      d = await startDaemon(env);
    }
    assert.equal(ids.length, 200);
    assert.ok(openAtKill.some((n) => n > 0), "no kill landed while jobs were in flight");
    await waitAllTerminal(env, 200, 45_000, () => [...logs, d.output()].join("\n"));
    await stopDaemon(d);
    assertExactlyOnce(env, ids);
    t.diagnostic(`unfinished videos at each kill: ${openAtKill.join(", ")}; videos started more than once: ${restartedCount(env)}`);
  });

  it("kill -9 of nats-server mid-run, then restart: every job completes exactly once", async (t) => {
    const server = await newServer();
    const env = await newEnv(server.url);
    const d = await startDaemon(env);
    const ids = await enqueue(env, 80);
    await sleep(randomBetween(200, 600));
    assert.ok(openCount(env) > 0, "jobs in flight when nats-server is killed");
    await server.kill9();
    // NATS is down: the CLI cannot reach the daemon and records into the store itself.
    ids.push(...(await enqueue(env, 20)));
    await sleep(500);
    await server.restart();
    ids.push(...(await enqueue(env, 20)));
    await waitAllTerminal(env, ids.length, 40_000, () => d.output());
    assert.equal(d.child.exitCode, null, `daemon exited:\n${tail(d.output())}`);
    await stopDaemon(d);
    assertExactlyOnce(env, ids);
    t.diagnostic(`jobs republished by the reconciler: ${republishedCount(d.output())}`);
  });

  it("nats-server store wiped while it was down: the daemon recreates the stream and republishes every job", async (t) => {
    const server = await newServer();
    const env = await newEnv(server.url);
    const d = await startDaemon(env);
    const ids = await enqueue(env, 80);
    await sleep(randomBetween(200, 600));
    assert.ok(openCount(env) > 0, "jobs in flight when nats-server is killed");
    await server.kill9();
    for (const entry of await readdir(server.storeDir)) await rm(join(server.storeDir, entry), { recursive: true, force: true });
    await server.restart();
    ids.push(...(await enqueue(env, 20)));
    await waitAllTerminal(env, ids.length, 40_000, () => d.output());
    assert.equal(d.child.exitCode, null, `daemon exited:\n${tail(d.output())}`);
    await stopDaemon(d);
    assertExactlyOnce(env, ids);
    const republished = republishedCount(d.output());
    assert.ok(republished > 0, "the reconciler republished the jobs the wiped stream held");
    t.diagnostic(`jobs republished by the reconciler: ${republished}`);
  });

  it("embedded mode: kill -9 of its nats-server child; the daemon restarts it and jobs complete", async () => {
    const env = await newEnv(undefined, { VQD_NATS__EMBEDDED__PORT: String(await freePort()) });
    const d = await startDaemon(env);
    const first = await waitFor("the embedded server's runtime file", 5000, () => embeddedNatsPid(env));
    embeddedPids.push(first);
    const ids = await enqueue(env, 60);
    await sleep(randomBetween(100, 400));
    assert.ok(openCount(env) > 0, "jobs in flight when nats-server is killed");
    process.kill(first, "SIGKILL");
    await waitFor("the embedded nats-server to die", 5000, () => !alive(first));
    const second = await waitFor("a restarted embedded nats-server", 15_000, async () => {
      const pid = await embeddedNatsPid(env);
      return pid !== null && pid !== first && alive(pid) ? pid : null;
    });
    embeddedPids.push(second);
    ids.push(...(await enqueue(env, 20)));
    await waitAllTerminal(env, ids.length, 40_000, () => d.output());
    assert.equal(d.child.exitCode, null, `daemon exited:\n${tail(d.output())}`);
    await stopDaemon(d);
    assert.ok(!alive(second), "a clean daemon stop stops its embedded nats-server");
    assertExactlyOnce(env, ids);
  });
});
