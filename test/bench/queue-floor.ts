/**
 * The queue group's floor: the durable work one no-op job needs in vqd's design, done with raw
 * better-sqlite3 statements and raw nats.js in one process. Of vqd it uses only openDatabase
 * (the schema and pragmas) and AckedPublisher (pipelined JetStream publishes): no domain, store,
 * relay, puller, worker pool or API server. It answers "how fast could any implementation of
 * this design go on this machine?", so that the bench can tell our code's overhead
 * (ours / floor) apart from the design's ceiling (floor / BullMQ).
 *
 * Per job, as in ours:
 * - enqueue: `<prefix>.api.enqueue` requests of BATCH paths; in the write transaction INSERT the
 *   VideoEnqueued event, the video row and the outbox row; reply with the ids after the commit;
 *   publish VideoEnqueued on `<prefix>.events.VideoEnqueued`;
 * - relay: JetStream publish with Nats-Msg-Id to `<prefix>.jobs.<lane>` (work-queue stream, file
 *   store), acks pipelined under one wildcard reply subscription; UPDATE the outbox row as sent;
 * - worker: a durable pull consumer per lane; SELECT the video, INSERT AttemptStarted, UPDATE the
 *   video, INSERT StepCompleted and VideoCompleted, UPDATE the video; ack after the commit;
 *   publish the three events;
 * - one write transaction per turn of the event loop (group commit), WAL + synchronous=NORMAL,
 *   the production schema (openDatabase runs the migrations).
 *
 * Left out, so that the floor is an upper bound on throughput and not a competitor: the path
 * checks, decide/evolve, event-id idempotence, the full video row update, strict priority
 * between lanes (each lane's consumer runs freely), heartbeats, the running-job bookkeeping,
 * telemetry hooks, error handling beyond failing the run.
 */
import { equal } from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type ConsumerMessages } from "@nats-io/jetstream";
import { connect, headers, nanos, type NatsConnection } from "@nats-io/transport-node";
import { AckedPublisher } from "../../src/bus/acked-publisher.js";
import { subjects as makeSubjects } from "../../src/bus/index.js";
import type { Lane } from "../../src/domain/index.js";
import { openDatabase, type Database } from "../../src/store/index.js";
import { jobCpuMeter, tempDir, watchCompletions, within } from "./measure.js";
import type { Batch, RunResult } from "./queue.bench.js";

const LANES: readonly Lane[] = ["high", "normal", "low"];
/** Messages each lane's consumer keeps buffered: generous, the floor does not do strict priority. */
const BUFFERED = 100;

let runCounter = 0;

interface VideoRow {
  version: number;
}

/** One run of the floor over the same batches as ours; checked like ours afterwards. */
export async function floorOnce(srv: { readonly url: string; readonly pid: number }, work: readonly Batch[], timeoutMs: number): Promise<RunResult> {
  const jobs = work.reduce((n, b) => n + b.size, 0);
  const tag = `${process.pid}n${++runCounter}`;
  const subj = makeSubjects(`vqfloor${tag}`);
  const streamName = `VQFLOOR_${tag}`;
  const dir = tempDir("vqd-floor-");
  const te = new TextEncoder();
  const td = new TextDecoder();
  let db: Database | undefined;
  let nc: NatsConnection | undefined;
  let client: NatsConnection | undefined;
  const consumers: ConsumerMessages[] = [];
  const problems: string[] = [];
  try {
    db = await openDatabase({ file: join(dir.path, "floor.db"), synchronous: "normal" });
    const raw = db.raw;
    nc = await connect({ servers: srv.url, name: "vqd-bench-floor" });
    client = await connect({ servers: srv.url, name: "vqd-bench-floor-client" });
    const server = nc;
    const jsm = await jetstreamManager(server);
    await jsm.streams.add({
      name: streamName,
      subjects: [subj.jobsWildcard],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      duplicate_window: nanos(120_000),
    });
    for (const lane of LANES) {
      await jsm.consumers.add(streamName, { durable_name: lane, filter_subject: subj.job(lane), ack_policy: AckPolicy.Explicit, ack_wait: nanos(30_000) });
    }

    const sql = {
      video: raw.prepare<[string], VideoRow>("SELECT * FROM videos WHERE id = ?"),
      event: raw.prepare("INSERT INTO events (event_id, stream_id, stream_version, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)"),
      insertVideo: raw.prepare(
        "INSERT INTO videos (id, version, state, lane, pipeline, path, attempts, max_attempts, dispatch, current_step, steps, completed_steps, last_error, metadata, not_before, enqueued_at, updated_at, started_at, finished_at) " +
          "VALUES (?, 1, 'queued', ?, 'noop', ?, 0, 3, 1, NULL, '[\"noop\"]', '[]', NULL, '{}', NULL, ?, ?, NULL, NULL)",
      ),
      updateVideo: raw.prepare(
        "UPDATE videos SET version = ?, state = ?, attempts = 1, current_step = ?, completed_steps = ?, updated_at = ?, started_at = ?, finished_at = ? WHERE id = ?",
      ),
      outbox: raw.prepare("INSERT INTO outbox (video_id, dispatch, lane, msg_id, available_at, created_at) VALUES (?, 1, ?, ?, ?, ?)"),
      sent: raw.prepare("UPDATE outbox SET sent_at = ?, stream_seq = ?, publish_attempts = publish_attempts + 1 WHERE id = ?"),
      begin: raw.prepare("BEGIN IMMEDIATE"),
      commit: raw.prepare("COMMIT"),
    };

    // Group commit: the first write of a turn opens the transaction, the end of the turn commits it.
    let afterCommit: (() => void)[] | null = null;
    const write = (fn: () => void, then?: () => void): void => {
      if (afterCommit === null) {
        sql.begin.run();
        const pending: (() => void)[] = [];
        afterCommit = pending;
        setImmediate(() => {
          sql.commit.run();
          afterCommit = null;
          for (const f of pending) f();
        });
      }
      fn();
      if (then) afterCommit.push(then);
    };
    const publishEvent = (type: string, videoId: string, version: number, data: unknown): void => {
      server.publish(subj.event(type), te.encode(JSON.stringify({ eventId: randomUUID(), videoId, type, version, recordedAt: new Date().toISOString(), data })));
    };

    // JetStream publishes, pipelined (vqd's relay publishes the same way, through the same class).
    const publisher = new AckedPublisher(server);

    server.subscribe(subj.api("enqueue"), {
      callback: (_err, msg) => {
        const req = JSON.parse(td.decode(msg.data)) as { paths: string[]; priority: Lane };
        const now = new Date().toISOString();
        const added: { id: string; outbox: number }[] = [];
        write(
          () => {
            for (const path of req.paths) {
              const id = randomUUID();
              sql.event.run(randomUUID(), id, 1, "VideoEnqueued", JSON.stringify({ path, lane: req.priority, pipeline: "noop", steps: ["noop"] }), "{}", now);
              sql.insertVideo.run(id, req.priority, path, now, now);
              added.push({ id, outbox: Number(sql.outbox.run(id, req.priority, `${id}:1`, Date.now(), now).lastInsertRowid) });
            }
          },
          () => {
            msg.respond(te.encode(JSON.stringify(added.map((a) => a.id))));
            for (const a of added) publishEvent("VideoEnqueued", a.id, 1, { lane: req.priority });
            const messages = added.map((a) => {
              const h = headers();
              h.set("Nats-Msg-Id", `${a.id}:1`);
              return { subject: subj.job(req.priority), payload: te.encode(JSON.stringify({ videoId: a.id, dispatch: 1 })), headers: h };
            });
            void publisher.publish(messages, timeoutMs).then((outcomes) => {
              const at = new Date().toISOString();
              write(() =>
                outcomes.forEach((o, i) => {
                  if (o.ok) sql.sent.run(at, o.seq, added[i]?.outbox);
                  else problems.push(o.error.message);
                }),
              );
            });
          },
        );
      },
    });

    const js = jetstream(server);
    for (const lane of LANES) {
      const messages = await (await js.consumers.get(streamName, lane)).consume({ max_messages: BUFFERED });
      consumers.push(messages);
      void (async () => {
        for await (const m of messages) {
          const { videoId } = JSON.parse(td.decode(m.data)) as { videoId: string };
          const now = new Date().toISOString();
          write(
            () => {
              const v = sql.video.get(videoId);
              if (!v) throw new Error(`floor: video ${videoId} is not in the store`);
              sql.event.run(randomUUID(), videoId, v.version + 1, "AttemptStarted", JSON.stringify({ dispatch: 1, attempt: 1, worker: `floor/${lane}` }), '{"source":"worker"}', now);
              sql.updateVideo.run(v.version + 1, "running", "noop", "[]", now, now, null, videoId);
              sql.event.run(randomUUID(), videoId, v.version + 2, "StepCompleted", JSON.stringify({ attempt: 1, index: 0, step: "noop", outputs: {}, durationMs: 0 }), '{"source":"worker"}', now);
              sql.event.run(randomUUID(), videoId, v.version + 3, "VideoCompleted", JSON.stringify({ attempt: 1 }), '{"source":"worker"}', now);
              sql.updateVideo.run(v.version + 3, "completed", null, '["noop"]', now, now, now, videoId);
            },
            () => {
              m.ack();
              publishEvent("AttemptStarted", videoId, 2, { attempt: 1 });
              publishEvent("StepCompleted", videoId, 3, { step: "noop" });
              publishEvent("VideoCompleted", videoId, 4, { attempt: 1 });
            },
          );
        }
      })().catch((err: Error) => problems.push(`lane ${lane}: ${err.message}`));
    }
    await server.flush();

    const completed = await watchCompletions(client, subj, jobs);
    const cpu = jobCpuMeter(srv.pid);
    const start = performance.now();
    let k = 0;
    for (const b of work) {
      const paths = Array.from({ length: b.size }, () => `/srv/videos/incoming/clip-${String((k++ % 8) + 1).padStart(5, "0")}.mp4`);
      const reply = await client.request(subj.api("enqueue"), te.encode(JSON.stringify({ paths, priority: b.lane })), { timeout: timeoutMs });
      equal((reply.json() as string[]).length, b.size, "ids returned by the floor's enqueue");
    }
    const enqueueMs = performance.now() - start;
    await within(completed.done, timeoutMs, () => `floor: ${completed.ids.size} of ${jobs} completed; ${problems.join("; ") || "no errors"}`);
    const totalMs = completed.lastAt() - start;
    const used = cpu(jobs);
    completed.stop();
    equal(problems.length, 0, problems.join("; "));
    const row = raw.prepare("SELECT count(*) AS n FROM videos WHERE state = 'completed'").get() as { n: number };
    equal(row.n, jobs, "completed videos in the floor's store");
    return { jobsPerSec: jobs / (totalMs / 1000), enqueueMs, totalMs, nodeCpuUsPerJob: used.node, serverCpuUsPerJob: used.server };
  } finally {
    for (const c of consumers) c.stop();
    if (nc && !nc.isClosed()) await jetstreamManager(nc).then((jsm) => jsm.streams.delete(streamName)).catch(() => undefined);
    await nc?.close();
    await client?.close();
    await db?.close();
    dir.remove();
  }
}
