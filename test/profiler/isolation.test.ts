/**
 * Invariant 8: profiling never touches live data. A live daemon (`vqd start`, a child process)
 * works through jobs; `vqd profile basic --quick` runs beside it with the same config, on the same
 * NATS server. Afterwards the live database holds the same videos, its event log is the old log
 * plus only the live jobs' own progress (every attempt taken by the live daemon's workers), the
 * live stream and consumers are the same, and nothing of the profiling run is left on the server.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { ReportFiles } from "../../src/profiler/index.js";
import { openDatabase } from "../../src/store/index.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { makeVqdEnv, type DaemonProcess, type VqdEnv } from "../support/vqd-env.js";
import { assertValidReport, streamNames } from "./helpers.js";
import { waitFor as poll } from "../support/wait.js";

interface EventRow {
  position: number;
  event_id: string;
  stream_id: string;
  type: string;
  data: string;
  recorded_at: string;
}

interface Snapshot {
  readonly events: EventRow[];
  readonly videos: string[];
  readonly byState: Record<string, number>;
}

const JOBS = 60;
const SLEEP_MS = 300;

let srv: TestNatsServer;
let env: VqdEnv;
let live: DaemonProcess;

before(async () => {
  srv = await startNatsServer();
  env = await makeVqdEnv({ natsUrl: srv.url, extra: { VQD_WORKERS__COUNT: "3", VQD_LOGGING__LEVEL: "info" } });
  const configFile = path.join(env.root, "vqd.yaml");
  fs.writeFileSync(configFile, `pipelines:\n  slow:\n    steps:\n      - step: sleep\n        options: { ms: ${SLEEP_MS} }\n`);
  env.env.VQD_CONFIG = configFile;
  live = env.spawnDaemon();
  await live.ready();
});

after(async () => {
  live?.child.kill("SIGTERM");
  await live?.exited();
  await env?.cleanup();
  await srv?.stop();
});

async function snapshot(): Promise<Snapshot> {
  const db = await openDatabase({ file: env.config().database.file, readonly: true });
  try {
    const events = db.raw.prepare("SELECT position, event_id, stream_id, type, data, recorded_at FROM events ORDER BY position").all() as EventRow[];
    const videos = (db.raw.prepare("SELECT id FROM videos ORDER BY id").all() as { id: string }[]).map((r) => r.id);
    const byState = Object.fromEntries((db.raw.prepare("SELECT state, count(*) AS n FROM videos GROUP BY state").all() as { state: string; n: number }[]).map((r) => [r.state, r.n]));
    return { events, videos, byState };
  } finally {
    await db.close();
  }
}

async function liveStream(name: string) {
  const nc = await connect({ servers: srv.url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(name);
    const consumers: string[] = [];
    for await (const c of jsm.consumers.list(name)) consumers.push(c.name);
    return { created: info.created, subjects: info.config.subjects, consumers: consumers.sort() };
  } finally {
    await nc.close();
  }
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  await poll(probe, timeoutMs, what, 100);
}

describe("isolation from live data", () => {
  test("a profiling run beside a busy daemon leaves its queue, database and stream untouched", async () => {
    const config = env.config();
    const paths = await env.videos(JOBS);
    const enq = await env.cli(["enqueue", ...paths, "--pipeline", "slow", "--json"]);
    assert.equal(enq.code, 0, enq.stderr);
    const ids = new Set((JSON.parse(enq.stdout) as { id: string }[]).map((r) => r.id));
    assert.equal(ids.size, JOBS);
    await waitFor("live jobs to be running", async () => ((await snapshot()).byState.running ?? 0) > 0, 15_000);

    const streamBefore = await liveStream(config.nats.stream);
    const before = await snapshot();
    assert.ok((before.byState.queued ?? 0) > 0, "live jobs still waiting when the profile starts");
    const t0 = new Date().toISOString();
    const run = await env.cli(["profile", "basic", "--quick", "--json"], { timeoutMs: 120_000 });
    const t1 = new Date().toISOString();
    assert.ok(run.code === 0 || run.code === 1, `profile exit ${run.code}\n${run.stderr}`);
    const { report, files } = JSON.parse(run.stdout) as { report: unknown; files: ReportFiles };
    assertValidReport(report);
    assert.equal(report.sections.filter((s) => s.error).length, 0, JSON.stringify(report.sections.map((s) => s.error)));
    assert.equal(report.isolation.nats, "daemon", "it ran on the live daemon's NATS server");
    assert.ok(report.isolation.natsUrl.endsWith(`:${srv.port}`));
    assert.ok(!report.isolation.stream.startsWith(config.nats.stream) && !report.isolation.subjectPrefix.startsWith(`${config.nats.subjectPrefix}.`));
    assert.equal(path.dirname(files.json), config.reportsDir);

    await waitFor("the live jobs to finish", async () => ((await snapshot()).byState.completed ?? 0) === JOBS, 60_000);
    const afterSnap = await snapshot();

    // The same videos; every one completed exactly once.
    assert.deepEqual(afterSnap.videos, before.videos);
    assert.deepEqual(new Set(afterSnap.videos), ids);
    assert.deepEqual(afterSnap.byState, { completed: JOBS });
    const completed = afterSnap.events.filter((e) => e.type === "VideoCompleted");
    assert.equal(completed.length, JOBS);
    assert.equal(new Set(completed.map((e) => e.stream_id)).size, JOBS);

    // The old log is unchanged, and everything added since is a live job's own progress.
    assert.deepEqual(afterSnap.events.slice(0, before.events.length), before.events);
    const added = afterSnap.events.slice(before.events.length);
    assert.ok(added.length > 0);
    for (const e of added) {
      assert.ok(ids.has(e.stream_id), `event ${e.type} of ${e.stream_id} belongs to a live video`);
      assert.ok(["AttemptStarted", "StepCompleted", "VideoCompleted"].includes(e.type), `unexpected ${e.type}`);
    }
    // Every attempt, before and during the run, was taken by the live daemon's own workers.
    const workers = afterSnap.events.filter((e) => e.type === "AttemptStarted").map((e) => (JSON.parse(e.data) as { worker: string }).worker);
    assert.equal(workers.length, JOBS, "one attempt per video: no job was taken and lost by anyone else");
    for (const w of workers) assert.ok(w.startsWith(`${hostname()}:${live.child.pid}/`), `attempt by ${w}`);
    // The live jobs really ran while the profile did.
    assert.ok(added.some((e) => e.recorded_at >= t0 && e.recorded_at <= t1), "live jobs progressed during the profiling run");

    // The live stream is the same stream with the same consumers; nothing of the run is left.
    assert.deepEqual(await liveStream(config.nats.stream), streamBefore);
    assert.deepEqual(await streamNames(srv.url), [config.nats.stream]);
    assert.ok(!fs.existsSync(report.isolation.scratchDir));
  });
});
