/**
 * Graceful shutdown of `vqd start` (a child process): SIGTERM lets running jobs finish until
 * workers.shutdownDeadlineMs, then hands the rest back to NATS; a second signal exits at once.
 * Whatever way it stops, nothing is lost and nothing completes twice after a restart.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { makeVqdEnv, type DaemonProcess, type VqdEnv } from "../support/vqd-env.js";
import { waitFor as poll } from "../support/wait.js";

const envs: VqdEnv[] = [];
const servers: TestNatsServer[] = [];

afterEach(async () => {
  for (const env of envs.splice(0)) await env.cleanup();
  for (const s of servers.splice(0)) await s.stop();
});

async function setup(extra: Record<string, string>): Promise<VqdEnv> {
  const server = await startNatsServer();
  servers.push(server);
  const env = await makeVqdEnv({ natsUrl: server.url, extra: { VQD_WORKERS__COUNT: "3", VQD_DEFAULTPIPELINE: "slow", ...extra } });
  envs.push(env);
  return env;
}

async function startDaemon(env: VqdEnv): Promise<DaemonProcess> {
  const d = env.spawnDaemon();
  await d.ready(20_000);
  return d;
}

async function enqueue(env: VqdEnv, n: number): Promise<string[]> {
  const files = await env.videos(n);
  const r = await env.cli(["enqueue", "--json", ...files]);
  assert.equal(r.code, 0, `enqueue failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return (JSON.parse(r.stdout) as { id?: string; error?: string }[]).map((o) => {
    assert.ok(o.id, `enqueue refused a file: ${o.error}`);
    return o.id;
  });
}

/** Runs fn against the daemon's SQLite file, opened read-only. */
function query<T>(env: VqdEnv, fn: (db: BetterSqlite3.Database) => T): T {
  const db = new BetterSqlite3(join(env.dataDir, "vqd.db"), { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function states(env: VqdEnv): Map<string, string> {
  return query(env, (db) => new Map((db.prepare(`SELECT id, state FROM videos`).all() as { id: string; state: string }[]).map((r) => [r.id, r.state])));
}

/** Per video, how many events of a type (and step, for StepCompleted) it has. */
function eventCounts(env: VqdEnv, type: string, step?: string): Map<string, number> {
  const sql = `SELECT stream_id AS id, count(*) AS n FROM events WHERE type = ? ${step ? `AND json_extract(data, '$.step') = ?` : ""} GROUP BY stream_id`;
  return query(env, (db) => new Map((db.prepare(sql).all(...(step ? [type, step] : [type])) as { id: string; n: number }[]).map((r) => [r.id, r.n])));
}

/** Videos running right now, and those of them that have at least `steps` completed steps. */
function running(env: VqdEnv, steps = 0): string[] {
  return query(env, (db) =>
    (db.prepare(`SELECT id FROM videos WHERE state = 'running' AND json_array_length(completed_steps) >= ?`).all(steps) as { id: string }[]).map((r) => r.id),
  );
}

/** Videos whose current attempt a worker of this daemon process is running. */
function runningIn(env: VqdEnv, pid: number): number {
  const sql = `SELECT count(*) AS n FROM videos v WHERE v.state = 'running' AND EXISTS (
    SELECT 1 FROM events e WHERE e.stream_id = v.id AND e.type = 'AttemptStarted'
      AND json_extract(e.data, '$.attempt') = v.attempts AND json_extract(e.data, '$.worker') LIKE ?)`;
  return query(env, (db) => (db.prepare(sql).get(`%:${pid}/%`) as { n: number }).n);
}

const waitFor = <T>(what: string, timeoutMs: number, probe: () => T | null | false, log?: () => string, everyMs = 100): Promise<T> =>
  poll(probe, timeoutMs, what, everyMs, log && (() => `--- daemon log ---\n${tail(log())}`));

async function waitAllCompleted(env: VqdEnv, ids: readonly string[], timeoutMs: number, log: () => string): Promise<void> {
  await waitFor(
    "every video to complete",
    timeoutMs,
    () => {
      const s = states(env);
      return ids.every((id) => s.get(id) === "completed");
    },
    () => `${JSON.stringify(Object.fromEntries(states(env)))}\n${stuckTimelines(env, ids)}\n${log()}`,
  );
}

/** Events and outbox rows of the videos that are not completed: what a failure message needs. */
function stuckTimelines(env: VqdEnv, ids: readonly string[]): string {
  const s = states(env);
  return query(env, (db) =>
    ids
      .filter((id) => s.get(id) !== "completed")
      .map((id) => {
        const events = db.prepare(`SELECT type, data, recorded_at FROM events WHERE stream_id = ? ORDER BY position`).all(id);
        const outbox = db.prepare(`SELECT * FROM outbox WHERE video_id = ? ORDER BY id`).all(id);
        return `${id}: ${JSON.stringify({ events, outbox })}`;
      })
      .join("\n"),
  );
}

/** Invariants 2 and 3: every id exists, completed, with exactly one VideoCompleted and one terminal event. */
function assertExactlyOnce(env: VqdEnv, ids: readonly string[]): void {
  const s = states(env);
  const completed = eventCounts(env, "VideoCompleted");
  const terminal = query(
    env,
    (db) =>
      new Map(
        (
          db.prepare(`SELECT stream_id AS id, count(*) AS n FROM events WHERE type IN ('VideoCompleted', 'VideoDeadLettered', 'VideoCancelled') GROUP BY stream_id`).all() as {
            id: string;
            n: number;
          }[]
        ).map((r) => [r.id, r.n]),
      ),
  );
  assert.equal(s.size, ids.length, "videos in the record");
  for (const id of ids) {
    assert.equal(s.get(id), "completed", `video ${id}`);
    assert.equal(completed.get(id), 1, `VideoCompleted events of ${id}`);
    assert.equal(terminal.get(id), 1, `terminal events of ${id}`);
  }
}

/** Sends a signal and resolves with the exit code and how long the exit took. */
async function signalAndWait(d: DaemonProcess, signal: NodeJS.Signals): Promise<{ code: number | string; ms: number }> {
  const t0 = performance.now();
  d.child.kill(signal);
  const code = await d.exited();
  return { code, ms: performance.now() - t0 };
}

function tail(text: string, lines = 40): string {
  return text.split("\n").slice(-lines).join("\n");
}

describe("daemon shutdown", { timeout: 85_000 }, () => {
  it("SIGTERM with jobs in flight: running jobs finish within the deadline, exit 0, the rest complete after a restart", async () => {
    const env = await setup({
      VQD_PIPELINES__SLOW: "{steps: [{step: sleep, options: {ms: 1500}}]}",
      VQD_WORKERS__SHUTDOWNDEADLINEMS: "5000",
    });
    let d = await startDaemon(env);
    const ids = await enqueue(env, 9);
    const inFlight = await waitFor("three running jobs", 10_000, () => {
      const r = running(env);
      return r.length === 3 ? r : null;
    });
    const stop = await signalAndWait(d, "SIGTERM");
    assert.equal(stop.code, 0, `exit code\n${tail(d.output())}`);
    assert.ok(stop.ms < 5000 + 2000, `exit took ${Math.round(stop.ms)} ms, deadline 5000 ms`);
    // The running jobs were allowed to finish (1.5 s steps, 5 s deadline): recorded completed, once.
    const after = states(env);
    for (const id of inFlight) assert.equal(after.get(id), "completed", `job ${id} running at SIGTERM`);
    assert.ok([...after.values()].some((s) => s !== "completed"), "some jobs were still waiting at shutdown");

    const firstLog = d.output();
    d = await startDaemon(env);
    await waitAllCompleted(env, ids, 30_000, () => `${firstLog}\n${d.output()}`);
    assert.equal((await signalAndWait(d, "SIGTERM")).code, 0);
    assertExactlyOnce(env, ids);
    const attempts = eventCounts(env, "AttemptStarted");
    for (const id of inFlight) assert.equal(attempts.get(id), 1, `job ${id} finished during the drain: never started again`);
  });

  it("deadline shorter than the running steps: exit 0 quickly, unfinished jobs handed back and resumed after a restart without rerunning completed steps", async () => {
    const env = await setup({
      VQD_PIPELINES__SLOW: "{steps: [{step: sleep, name: warm, options: {ms: 100}}, {step: sleep, name: long, options: {ms: 10000}}]}",
      VQD_WORKERS__SHUTDOWNDEADLINEMS: "500",
    });
    let d = await startDaemon(env);
    const ids = await enqueue(env, 3);
    // All three in their long step: the first step done and recorded.
    const inFlight = await waitFor("three jobs in their second step", 10_000, () => {
      const r = running(env, 1);
      return r.length === 3 ? r : null;
    });
    const stop = await signalAndWait(d, "SIGTERM");
    assert.equal(stop.code, 0, `exit code\n${tail(d.output())}`);
    assert.ok(stop.ms < 500 + 2500, `exit took ${Math.round(stop.ms)} ms, deadline 500 ms`);
    assert.match(d.output(), /shutdown deadline reached/);
    for (const [id, state] of states(env)) assert.equal(state, "running", `job ${id} was neither finished nor failed by the shutdown`);
    assert.deepEqual(eventCounts(env, "AttemptFailed"), new Map(), "a shutdown is not a failed attempt");

    // Handed back with nak: a restarted daemon gets them well before the 30 s ack wait would.
    const firstLog = d.output();
    const restartedAt = Date.now();
    d = await startDaemon(env);
    await waitAllCompleted(env, ids, 25_000, () => `${firstLog}\n${d.output()}`);
    assert.ok(Date.now() - restartedAt < 10_000 + 8_000, "jobs came back through the nak, not the ack wait");
    assert.equal((await signalAndWait(d, "SIGTERM")).code, 0);
    assertExactlyOnce(env, ids);
    const warm = eventCounts(env, "StepCompleted", "warm");
    const long = eventCounts(env, "StepCompleted", "long");
    const attempts = eventCounts(env, "AttemptStarted");
    for (const id of inFlight) {
      assert.equal(warm.get(id), 1, `step "warm" of ${id} ran once (not rerun after the restart)`);
      assert.equal(long.get(id), 1, `step "long" of ${id} completed once`);
      assert.equal(attempts.get(id), 2, `${id}: the interrupted attempt and the resumed one`);
    }
  });

  it("a second SIGTERM or SIGINT during shutdown exits at once, non-zero; nothing is lost", async () => {
    const env = await setup({
      VQD_PIPELINES__SLOW: "{steps: [{step: sleep, options: {ms: 2000}}]}",
      VQD_WORKERS__SHUTDOWNDEADLINEMS: "30000",
      VQD_NATS__ACKWAITMS: "3000",
      VQD_WORKERS__HEARTBEATMS: "1000",
    });
    const ids: string[] = [];
    const logs: string[] = [];
    // Several rounds: jobs a stopping daemon held but had not started are handed back at once,
    // which nats-server 2.9 answers by delivering them twice; a later daemon must not lose them.
    for (const second of ["SIGINT", "SIGTERM", "SIGINT", "SIGTERM"] as const) {
      const d = await startDaemon(env);
      ids.push(...(await enqueue(env, 3)));
      // Signal as soon as one job runs: the others are still held by the puller, not started.
      await waitFor("jobs running in this daemon", 10_000, () => runningIn(env, d.child.pid ?? 0) > 0, undefined, 20);
      d.child.kill("SIGTERM");
      await waitFor("the daemon to start shutting down", 5000, () => d.output().includes("shutting down"));
      const stop = await signalAndWait(d, second);
      logs.push(d.output());
      assert.notEqual(stop.code, 0, `second signal ${second}: exit code`);
      assert.ok(stop.ms < 1000, `second signal ${second}: exit took ${Math.round(stop.ms)} ms`);
    }
    // The jobs abandoned by the forced exits come back once their ack wait is over.
    const d = await startDaemon(env);
    await waitAllCompleted(env, ids, 30_000, () => `${logs.join("\n")}\n${d.output()}`);
    assert.equal((await signalAndWait(d, "SIGTERM")).code, 0);
    assertExactlyOnce(env, ids);
  });
});
