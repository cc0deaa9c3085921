/**
 * Telemetry in one process: settings from the config and OTEL_* variables, trace context, the
 * real OTLP exporters (http/protobuf and http/json) sending to a receiver started here, the
 * slow-operation log and counter, OTEL_SDK_DISABLED, an unreachable collector, the queue-depth
 * alert's hysteresis, memory snapshots and their growth per day.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { loadConfig, type Config } from "../../src/config/index.js";
import { createLogger, type Logger } from "../../src/shared/logger.js";
import { openDatabase, VideoStore } from "../../src/store/index.js";
import {
  formatTraceparent,
  growthPerDay,
  listMemorySnapshots,
  memoryGrowth,
  parseTraceparent,
  QueueDepthMonitor,
  setupTelemetry,
  takeMemorySnapshot,
  telemetrySettings,
  unsampled,
  type QueueDepthAlert,
  type Telemetry,
} from "../../src/telemetry/index.js";
import { startOtlpReceiver, type OtlpReceiver } from "../support/otlp-receiver.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/wait.js";
import { enqueue, fail, freshDb, NO_JITTER, priority, start } from "../store/fixtures.js";

/** A logger that keeps every line (JSON) for assertions. */
export function memoryLogger(level = "debug"): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const logger = createLogger({ level, format: "json", destination: { write: (l: string) => out.push(l) } as unknown as NodeJS.WritableStream });
  return { logger, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const config = (extra: Record<string, string> = {}, dir = tmpdir()): Config => loadConfig({ env: { VQD_DATADIR: join(dir, "data"), ...extra }, cwd: dir });

describe("telemetry settings", () => {
  it("loads nothing unless an endpoint (or an exporter) is named", () => {
    assert.equal(telemetrySettings(config(), {}).mode, "local");
    assert.equal(telemetrySettings(config({ VQD_TELEMETRY__ENABLED: "false" }), { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1" }).mode, "off");
    assert.equal(telemetrySettings(config(), { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1", OTEL_SDK_DISABLED: "true" }).mode, "local");
    const s = telemetrySettings(config(), { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1" });
    assert.equal(s.mode, "export");
    assert.equal(s.traces.protocol, "http/protobuf");
    assert.equal(s.traces.url, "http://127.0.0.1:1/v1/traces");
    assert.equal(s.metrics.url, "http://127.0.0.1:1/v1/metrics");
    const own = telemetrySettings(config(), { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:2/t", OTEL_EXPORTER_OTLP_HEADERS: "x-key=a%20b,bad", OTEL_EXPORTER_OTLP_TIMEOUT: "1234" });
    assert.equal(own.traces.url, "http://127.0.0.1:2/t", "a per-signal endpoint is the full URL");
    assert.deepEqual(own.traces.headers, { "x-key": "a b" });
    assert.equal(own.traces.timeoutMs, 1234);
    assert.equal(telemetrySettings(config(), { OTEL_TRACES_EXPORTER: "console" }).mode, "export");
    assert.equal(telemetrySettings(config(), { OTEL_TRACES_EXPORTER: "none", OTEL_METRICS_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1" }).mode, "local");
  });

  it("takes the endpoint, protocol and interval from the config file when OTEL_* does not say", () => {
    const c = config({ VQD_TELEMETRY__ENDPOINT: "http://127.0.0.1:4318/", VQD_TELEMETRY__PROTOCOL: "http/json", VQD_TELEMETRY__METRICINTERVALMS: "1500" });
    const s = telemetrySettings(c, {});
    assert.equal(s.mode, "export");
    assert.equal(s.traces.url, "http://127.0.0.1:4318/v1/traces");
    assert.equal(s.metrics.url, "http://127.0.0.1:4318/v1/metrics");
    assert.equal(s.traces.protocol, "http/json");
    assert.equal(s.metricIntervalMs, 1500);
    const env = telemetrySettings(c, { OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", OTEL_METRIC_EXPORT_INTERVAL: "700", OTEL_SERVICE_NAME: "vqd-eu" });
    assert.equal(env.traces.protocol, "grpc");
    assert.equal(env.traces.url, "http://127.0.0.1:4318/", "grpc takes the base address");
    assert.equal(env.metricIntervalMs, 700);
    assert.equal(env.serviceName, "vqd-eu");
  });

  it("refuses an endpoint that is not an http(s) URL (exit 78 with the key named)", () => {
    assert.throws(() => config({ VQD_TELEMETRY__ENDPOINT: "127.0.0.1:4318" }), /telemetry\.endpoint: must be "" or an http/);
  });
});

describe("trace context", () => {
  it("parses and formats traceparent, refusing malformed and all-zero ids", () => {
    const tp = formatTraceparent("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", 1);
    assert.equal(tp, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    assert.deepEqual(parseTraceparent(tp), { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", flags: 1 });
    assert.equal(parseTraceparent("00-00000000000000000000000000000000-b7ad6b7169203331-01"), undefined);
    assert.equal(parseTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra"), undefined);
    assert.equal(parseTraceparent("garbage"), undefined);
    assert.equal(parseTraceparent(undefined), undefined);
  });
});

describe("exporting to an OTLP/HTTP receiver", () => {
  let otlp: OtlpReceiver;
  before(async () => {
    otlp = await startOtlpReceiver();
  });
  after(async () => {
    await otlp.close();
  });

  for (const protocol of ["http/protobuf", "http/json"] as const) {
    it(`sends spans with parent links and attributes, and metrics (${protocol})`, async () => {
      otlp.clear();
      const { logger } = memoryLogger();
      const tel = await setupTelemetry(config({ VQD_TELEMETRY__SLOWOPERATIONMS: "50" }), {
        role: "daemon",
        logger,
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_SERVICE_NAME: "vqd-test" },
      });
      assert.equal(tel.mode, "export");
      const root = tel.span("send vq.jobs.high", { kind: "producer", attributes: { "messaging.system": "nats", "vq.lane": "high" } });
      const headers: Record<string, string> = {};
      root.inject({ set: (k, v) => (headers[k] = v) });
      const child = tel.span("process vq.jobs.high", { kind: "consumer", parent: headers });
      const grandchild = tel.span("step noop", { parent: child });
      const linked = tel.span("vq.store.append", { links: [root.traceparent(), child] });
      for (const s of [grandchild, child, linked, root]) s.end();
      tel.jobStarted("high");
      tel.jobFinished("high", "noop", "completed", 0.002);
      tel.stepFinished("noop", "noop", "completed", 0.001);
      tel.committed([{ ok: true, video: { pipeline: "noop" }, events: [{ type: "VideoCompleted" }, { type: "AttemptFailed" }, { type: "VideoDeadLettered" }] }]);
      tel.storeAppended(0.0003, 4);
      tel.outboxPublished(3, 12);
      await tel.run("slow thing", {}, () => new Promise((r) => setTimeout(r, 80)));
      await tel.shutdown();

      const spans = await otlp.waitForSpans((s) => s.length >= 5, 5000);
      assert.ok(spans.every((s) => s.encoding === (protocol === "http/json" ? "json" : "protobuf")));
      const by = (name: string) => spans.find((s) => s.name === name) ?? assert.fail(`no span ${name}`);
      const [send, proc, step, append] = [by("send vq.jobs.high"), by("process vq.jobs.high"), by("step noop"), by("vq.store.append")];
      assert.equal(send.kind, "producer");
      assert.equal(send.parentSpanId, "");
      assert.equal(send.attributes["messaging.system"], "nats");
      assert.equal(proc.kind, "consumer");
      assert.equal(proc.traceId, send.traceId);
      assert.equal(proc.parentSpanId, send.spanId, "the consumer continues the producer's context from the headers");
      assert.equal(step.parentSpanId, proc.spanId);
      assert.deepEqual(
        append.links.map((l) => l.spanId),
        [send.spanId, proc.spanId],
      );
      assert.equal(send.resource["service.name"], "vqd-test");
      assert.equal(send.resource["vq.role"], "daemon");

      const metrics = await otlp.waitForMetrics((m) => m.some((x) => x.name === "vq.jobs.completed"), 5000);
      const names = new Set(metrics.map((m) => m.name));
      for (const n of [
        "vq.jobs.in_flight",
        "vq.jobs.completed",
        "vq.jobs.failed",
        "vq.jobs.dead_lettered",
        "vq.job.duration",
        "vq.step.duration",
        "vq.store.append.duration",
        "vq.outbox.lag",
        "vq.slow_operations",
        "vq.process.memory.rss",
        "vq.process.memory.heap_used",
        "vq.process.memory.heap_total",
      ]) {
        assert.ok(names.has(n), `metric ${n} arrives (got ${[...names].join(", ")})`);
      }
      const job = metrics.find((m) => m.name === "vq.job.duration");
      assert.equal(job?.type, "histogram");
      assert.equal(job?.unit, "s");
      assert.ok((job?.points[0]?.bounds ?? []).includes(3600), "duration buckets reach hours");
      const slow = metrics.find((m) => m.name === "vq.slow_operations");
      assert.equal(slow?.points.find((p) => p.attributes["vq.operation"] === "slow thing")?.value, 1);
    });
  }

  it("traces at most telemetry.tracedJobsPerSecond jobs; the rest travel unsampled and record nothing downstream", async () => {
    otlp.clear();
    const { logger } = memoryLogger();
    const tel = await setupTelemetry(config({ VQD_TELEMETRY__TRACEDJOBSPERSECOND: "2" }), { role: "daemon", logger, env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url } });
    const enqueue = tel.span("process vq.api.enqueue", { kind: "server" });
    const admitted = [tel.admitJob(), tel.admitJob(), tel.admitJob(), tel.admitJob()];
    assert.deepEqual(admitted, [true, true, false, false]);
    const over = tel.span("send vq.jobs.low", { kind: "producer", parent: unsampled(enqueue.traceparent()) });
    assert.equal(over.recording, false);
    assert.equal(parseTraceparent(over.traceparent())?.traceId, enqueue.traceId, "same trace, not recorded");
    const headers: Record<string, string> = {};
    over.inject({ set: (k, v) => (headers[k] = v) });
    assert.match(headers.traceparent ?? "", /-00$/);
    const downstream = tel.span("process vq.jobs.low", { kind: "consumer", parent: headers });
    const step = tel.span("step noop", { parent: downstream });
    const local = tel.span("process vq.jobs.low", { kind: "consumer", record: false });
    const underLocal = tel.span("step noop", { parent: local });
    assert.equal(underLocal.traceId, "", "nothing under an unrecorded span is recorded");
    assert.equal(step.recording, false);
    assert.match(step.traceparent() ?? "", /-00$/, "the unsampled context is carried on (to the store, to remote reports)");
    for (const s of [underLocal, local, step, downstream, over, enqueue]) s.end();
    await tel.shutdown();
    const spans = await otlp.waitForSpans((s) => s.some((x) => x.name === "process vq.api.enqueue"), 5000);
    assert.deepEqual(
      spans.map((s) => s.name),
      ["process vq.api.enqueue"],
    );
  });

  it("logs an operation slower than telemetry.slowOperationMs with its trace id, and counts it", async () => {
    otlp.clear();
    const { logger, lines } = memoryLogger();
    const tel = await setupTelemetry(config({ VQD_TELEMETRY__SLOWOPERATIONMS: "30" }), { role: "daemon", logger, env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url } });
    const fast = tel.span("quick");
    fast.end();
    let traceId = "";
    await tel.run("step snooze", {}, async (s) => {
      traceId = s.traceId;
      await new Promise((r) => setTimeout(r, 60));
    });
    // A second one within the window is counted but not logged again.
    await tel.run("step snooze", {}, () => new Promise((r) => setTimeout(r, 40)));
    const warnings = lines().filter((l) => l.msg !== undefined && String(l.msg).startsWith("slow operation"));
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.operation, "step snooze");
    assert.equal(warnings[0]?.traceId, traceId);
    assert.ok(Number(warnings[0]?.durationMs) >= 55);
    assert.equal(warnings[0]?.level, 40);
    await tel.shutdown();
    const metrics = await otlp.waitForMetrics((m) => m.some((x) => x.name === "vq.slow_operations"), 5000);
    const point = metrics.find((m) => m.name === "vq.slow_operations")?.points.find((p) => p.attributes["vq.operation"] === "step snooze");
    assert.equal(point?.value, 2);
  });

  it("logs slow operations without exporting anything when no endpoint is set", async () => {
    const { logger, lines } = memoryLogger();
    const tel = await setupTelemetry(config({ VQD_TELEMETRY__SLOWOPERATIONMS: "10" }), { role: "daemon", logger, env: {} });
    assert.equal(tel.mode, "local");
    await tel.run("step snooze", {}, () => new Promise((r) => setTimeout(r, 30)));
    assert.equal(lines().filter((l) => l.operation === "step snooze").length, 1);
    await tel.shutdown();
  });

  it("OTEL_SDK_DISABLED=true sends nothing", async () => {
    otlp.clear();
    const before = JSON.stringify(otlp.requests);
    const { logger } = memoryLogger();
    const tel = await setupTelemetry(config(), { role: "daemon", logger, env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_SDK_DISABLED: "true", OTEL_METRIC_EXPORT_INTERVAL: "100" } });
    assert.equal(tel.mode, "local");
    const s = tel.span("anything");
    assert.equal(s.traceparent(), undefined);
    s.end();
    tel.jobStarted("high");
    await tel.flush();
    await tel.shutdown();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(JSON.stringify(otlp.requests), before);
  });
});

describe("an unreachable collector", () => {
  let blackhole: Server;
  const sockets = new Set<Socket>();
  let holePort = 0;
  before(async () => {
    // Accepts connections and never answers: the worst kind of collector.
    blackhole = createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
    });
    await new Promise<void>((r) => blackhole.listen(0, "127.0.0.1", () => r()));
    const a = blackhole.address();
    holePort = typeof a === "object" && a ? a.port : 0;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => blackhole.close(r));
  });

  for (const kind of ["refusing connections", "never answering"] as const) {
    it(`never blocks the caller, and shutdown is bounded (${kind})`, async () => {
      const port = kind === "refusing connections" ? await freePort() : holePort;
      const { logger } = memoryLogger("silent");
      const tel: Telemetry = await setupTelemetry(config(), {
        role: "daemon",
        logger,
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_BSP_SCHEDULE_DELAY: "10", OTEL_METRIC_EXPORT_INTERVAL: "100", OTEL_EXPORTER_OTLP_TIMEOUT: "60000" },
      });
      const t0 = performance.now();
      for (let i = 0; i < 5000; i++) {
        const s = tel.span("process vq.jobs.normal", { kind: "consumer" });
        tel.jobStarted("normal");
        tel.jobFinished("normal", "noop", "completed", 0.001);
        s.end();
        if (i % 500 === 0) await new Promise((r) => setTimeout(r, 20));
      }
      const spent = performance.now() - t0;
      assert.ok(spent < 3000, `5000 spans took ${spent} ms`);
      const s0 = performance.now();
      await tel.shutdown(1000);
      assert.ok(performance.now() - s0 < 2500, "shutdown gives up after its timeout");
    });
  }
});

describe("queue-depth alert", () => {
  it("fires once when the depth goes above the threshold and clears once when it falls below", () => {
    const { logger, lines } = memoryLogger();
    const published: QueueDepthAlert[] = [];
    let depth = { high: 0, normal: 0, low: 0 };
    const m = new QueueDepthMonitor({ threshold: 100, read: () => depth, publish: (a) => published.push(a), logger, telemetry: noopTel() });
    const at = (normal: number, high = 0) => {
      depth = { high, normal, low: 0 };
      m.check();
    };
    at(100);
    assert.equal(published.length, 0, "at the threshold: nothing");
    at(100, 1);
    assert.deepEqual(
      published.map((a) => [a.state, a.depth, a.threshold]),
      [["raised", 101, 100]],
    );
    assert.deepEqual(published[0]?.byLane, { high: 1, normal: 100, low: 0 });
    at(150);
    at(101);
    at(100);
    assert.equal(published.length, 1, "no second alert while raised (100 keeps the state)");
    at(99);
    at(50);
    assert.deepEqual(
      published.map((a) => a.state),
      ["raised", "cleared"],
    );
    at(101);
    assert.deepEqual(
      published.map((a) => a.state),
      ["raised", "cleared", "raised"],
    );
    assert.equal(lines().filter((l) => l.alert === "queue_depth" && l.level === 40).length, 2, "a warning per raise");
    m.stop();
  });

  it("reads again after changes, but a slow read spaces the next ones out (at most ~2% of the loop)", async () => {
    const { logger } = memoryLogger();
    let reads = 0;
    let costMs = 0;
    const m = new QueueDepthMonitor({
      threshold: 100,
      debounceMs: 10,
      // Stands for the store's count of waiting rows, which takes longer the deeper the queue.
      read: () => {
        reads++;
        const until = performance.now() + costMs;
        while (performance.now() < until);
        return { high: 0, normal: 1, low: 0 };
      },
      publish: () => {},
      logger,
      telemetry: noopTel(),
    });
    try {
      m.changed();
      m.changed();
      await waitFor(() => reads === 1, 2000, "the first read after a change");
      m.changed();
      await waitFor(() => reads === 2, 2000, "a cheap read: the next change is read after the debounce");
      costMs = 20;
      m.check();
      assert.equal(reads, 3);
      m.changed();
      await sleep(400);
      assert.equal(reads, 3, "a 20 ms read: no other within 1 s");
      await waitFor(() => reads === 4, 3000, "the change read once the spacing has passed");
      assert.deepEqual(m.depth, { high: 0, normal: 1, low: 0 });
    } finally {
      m.stop();
    }
  });
});

describe("trace context in the store", () => {
  it("keeps the enqueue's traceparent in the event metadata and every outbox row of the video, retries and recovery copies included", async () => {
    const { db } = await freshDb();
    try {
      const store = new VideoStore(db);
      const tp = formatTraceparent("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1);
      store.execute("v1", enqueue({ lane: "normal" }), { source: "api", traceparent: tp });
      store.execute("v2", enqueue({ lane: "normal" }), { source: "cli" });
      const rows = () => db.raw.prepare("SELECT video_id, msg_id, traceparent FROM outbox ORDER BY id").all() as { video_id: string; msg_id: string; traceparent: string | null }[];
      assert.deepEqual(
        rows().map((r) => [r.msg_id, r.traceparent]),
        [
          ["v1.1", tp],
          ["v2.1", null],
        ],
      );
      assert.equal(store.timeline("v1")[0]?.metadata.traceparent, tp);
      assert.equal(store.pendingOutbox(10).find((r) => r.videoId === "v1")?.traceparent, tp);
      // A retry's dispatch (from a worker's report, which carries no traceparent) stays in the trace.
      store.execute("v1", start(1), { source: "worker" });
      store.execute("v1", fail(1, { retryable: true, backoff: NO_JITTER }), { source: "worker" });
      store.republish("v1", 2, "normal", "v1.2.r1");
      store.execute("v2", priority("high"), { source: "api", traceparent: tp });
      assert.deepEqual(
        rows().map((r) => [r.msg_id, r.traceparent]),
        [
          ["v1.1", tp],
          ["v2.1", null],
          ["v1.2", tp],
          ["v1.2.r1", tp],
          ["v2.2", null],
        ],
        "later dispatches take the video's first traceparent, never another request's",
      );
    } finally {
      await db.close();
    }
  });
});

describe("memory snapshots", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "vqd-snap-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("stores process memory and heap statistics, prunes rows and heap files, and computes growth per day", async () => {
    const db = await openDatabase({ file: join(dir, "vqd.db") });
    try {
      const t0 = Date.parse("2025-01-01T00:00:00Z");
      for (let i = 0; i < 4; i++) await takeMemorySnapshot({ db, role: "daemon", now: new Date(t0 + i * 86_400_000), retainRows: 3 });
      const snaps = listMemorySnapshots(db, { role: "daemon" });
      assert.equal(snaps.length, 3, "retainRows");
      assert.ok((snaps[0]?.rss ?? 0) > 0);
      assert.ok((snaps[0]?.heap.heap_size_limit ?? 0) > 0, "v8 heap statistics kept");
      const growth = memoryGrowth(db);
      assert.equal(growth.snapshots, 3);
      assert.equal(typeof growth.rssPerDay, "number");

      // Two older heap snapshot files, then a real one with retain 2: the oldest goes.
      const heapDir = join(dir, "heap");
      mkdirSync(heapDir);
      for (const [i, name] of ["vqd-cli-20240101_000000-1.heapsnapshot", "vqd-cli-20240102_000000-1.heapsnapshot"].entries()) {
        writeFileSync(join(heapDir, name), "{}");
        utimesSync(join(heapDir, name), new Date(t0 + i * 1000), new Date(t0 + i * 1000));
      }
      writeFileSync(join(heapDir, "unrelated.heapsnapshot"), "{}");
      const snap = await takeMemorySnapshot({ db, role: "cli", heapSnapshot: { dir: heapDir, retain: 2 } });
      assert.ok(snap.heapSnapshotFile?.startsWith(join(heapDir, "vqd-cli-")));
      const files = readdirSync(heapDir).sort();
      assert.deepEqual(files, [snap.heapSnapshotFile?.slice(heapDir.length + 1), "unrelated.heapsnapshot", "vqd-cli-20240102_000000-1.heapsnapshot"].sort(), "heap snapshot retention");
      assert.equal(memoryGrowth(db).snapshots, 3, "the CLI's own snapshot is not the daemon's");
    } finally {
      await db.close();
    }
  });

  it("growth per day is the least-squares slope", () => {
    const day = 86_400_000;
    assert.equal(growthPerDay([[0, 100]]), null);
    assert.equal(growthPerDay([
      [0, 100],
      [day, 300],
      [2 * day, 500],
    ]), 200);
  });
});

function noopTel(): Telemetry {
  return { mode: "local", observe() {}, alert() {} } as unknown as Telemetry;
}
