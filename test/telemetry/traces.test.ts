/**
 * Telemetry end to end, with real processes and a real OTLP/HTTP receiver: `vqd enqueue` (the
 * CLI), `vqd start` (the daemon) and `vqd worker` (a worker-only process) export to the receiver
 * started here, and one video makes one trace across every hop: enqueue -> API request -> store
 * -> outbox publish -> NATS -> worker -> each step -> result stored. Also: the metrics arrive
 * under their names, a slow step is logged and counted, the queue-depth alert fires once and
 * clears, OTEL_SDK_DISABLED=true sends nothing, and a collector that does not answer blocks
 * nothing.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import type { Subscription } from "@nats-io/transport-node";
import type { EnqueueResultJson } from "../../src/api/index.js";
import type { QueueDepthAlert } from "../../src/telemetry/index.js";
import { ancestry, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "../support/otlp-receiver.js";
import type { DaemonProcess } from "../support/vqd-env.js";
import { startHarness, waitFor, type Harness } from "../workers/daemon-harness.js";

const PIPELINES = {
  VQD_PIPELINES__TWO__STEPS: "[{step: noop}, {step: sleep, name: snooze, options: {ms: 300}}]",
  VQD_PIPELINES__BROKEN__STEPS: '[{step: sleep, name: crash, options: {ms: 1, fail: "fatal"}}]',
  VQD_DEFAULTPIPELINE: "two",
};

function otelEnv(otlp: { url: string }): Record<string, string> {
  return {
    VQD_TELEMETRY__ENABLED: "true",
    VQD_TELEMETRY__SLOWOPERATIONMS: "250",
    VQD_LOGGING__LEVEL: "info",
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    OTEL_METRIC_EXPORT_INTERVAL: "500",
    OTEL_SERVICE_NAME: "vqd-test",
  };
}

const stop = async (p: DaemonProcess | undefined): Promise<number | string | undefined> => {
  if (!p) return undefined;
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.exited();
  p.child.kill("SIGTERM");
  return p.exited();
};

async function enqueueViaCli(h: Harness, pipeline?: string): Promise<string> {
  const [path] = (await h.env.videos(1)) as [string];
  const r = await h.env.cli(["enqueue", path, "--json", ...(pipeline ? ["--pipeline", pipeline] : [])]);
  assert.equal(r.code, 0, r.stderr);
  const [out] = JSON.parse(r.stdout) as EnqueueResultJson[];
  if (!out || !("id" in out)) throw new Error(`enqueue refused: ${r.stdout}`);
  return out.id;
}

const done = (h: Harness, id: string, type = "VideoCompleted") => waitFor(() => h.events.some((e) => e.videoId === id && e.type === type), 15_000, `${id} ${type}`);

/** The spans of one trace, and a lookup by name that insists on exactly one. */
function traceOf(spans: readonly ReceivedSpan[], traceId: string) {
  const mine = spans.filter((s) => s.traceId === traceId);
  const one = (name: string | RegExp, role?: string): ReceivedSpan => {
    const found = mine.filter((s) => (typeof name === "string" ? s.name === name : name.test(s.name)) && (role === undefined || s.resource["vq.role"] === role));
    assert.equal(found.length, 1, `exactly one span ${String(name)}${role ? ` from the ${role}` : ""} in the trace (have: ${mine.map((s) => `${s.name}@${s.resource["vq.role"]}`).join(", ")})`);
    return found[0] as ReceivedSpan;
  };
  return { spans: mine, one };
}

function assertChild(child: ReceivedSpan, parent: ReceivedSpan): void {
  assert.equal(child.traceId, parent.traceId, `${child.name} is in the trace of ${parent.name}`);
  assert.equal(child.parentSpanId, parent.spanId, `${child.name} is a child of ${parent.name}`);
}

describe("traces across the NATS hop", () => {
  let otlp: OtlpReceiver;
  before(async () => {
    otlp = await startOtlpReceiver();
  });
  after(async () => {
    await otlp.close();
  });

  describe("daemon running the job itself", () => {
    let h: Harness;
    let daemon: DaemonProcess | undefined;
    before(async () => {
      h = await startHarness({ daemon: false, extra: { ...otelEnv(otlp), ...PIPELINES, VQD_WORKERS__COUNT: "1" } });
      daemon = h.env.spawnDaemon(["start"]);
      await daemon.ready();
    });
    after(async () => {
      await stop(daemon);
      await h?.close();
    });

    it("one trace from `vqd enqueue` through publish, process, every step and the stored results", async () => {
      const id = await enqueueViaCli(h);
      await done(h, id);
      const root = (await otlp.waitForSpans((s) => s.some((x) => x.name === "vqd enqueue"), 5000)).find((s) => s.name === "vqd enqueue") as ReceivedSpan;
      const p = h.subjects.prefix;
      const stored = (s: readonly ReceivedSpan[]) => {
        const proc = s.find((x) => x.traceId === root.traceId && x.name === `process ${p}.jobs.normal`);
        return proc ? s.filter((x) => x.name === "vq.store.append" && x.parentSpanId === proc.spanId) : [];
      };
      // The attempt's start and both steps' results are stored: three commands, committed inside
      // the job's span (the start and a quick step's result may share one group commit).
      const commands = (s: readonly ReceivedSpan[]) => stored(s).reduce((n, c) => n + Number(c.attributes["vq.commands"]), 0);
      const spans = await otlp.waitForSpans((s) => commands(s) === 3, 10_000, "the three stored reports");
      const t = traceOf(spans, root.traceId);

      assert.equal(root.parentSpanId, "", "the CLI's span is the root");
      assert.equal(root.resource["vq.role"], "cli");
      const request = t.one(`request ${p}.api.enqueue`, "cli");
      assert.equal(request.kind, "client");
      assertChild(request, root);
      const server = t.one(`process ${p}.api.enqueue`, "daemon");
      assert.equal(server.kind, "server");
      assertChild(server, request);
      const append = t.spans.find((s) => s.name === "vq.store.append" && s.parentSpanId === server.spanId);
      assert.ok(append, "the enqueue's store append is in the trace");
      const send = t.one(`send ${p}.jobs.normal`, "daemon");
      assert.equal(send.kind, "producer");
      assertChild(send, server);
      assert.equal(send.attributes["messaging.system"], "nats");
      assert.equal(send.attributes["messaging.destination.name"], `${p}.jobs.normal`);
      assert.equal(send.attributes["messaging.operation.type"], "send");
      const proc = t.one(`process ${p}.jobs.normal`, "daemon");
      assert.equal(proc.kind, "consumer");
      assertChild(proc, send);
      assert.equal(proc.attributes["messaging.system"], "nats");
      assert.equal(proc.attributes["messaging.operation.type"], "process");
      assert.equal(proc.attributes["vq.video_id"], id);
      assert.equal(proc.attributes["vq.outcome"], "completed");
      const noop = t.one("step noop");
      const snooze = t.one("step snooze");
      assertChild(noop, proc);
      assertChild(snooze, proc);
      assert.ok(snooze.endNs - snooze.startNs >= 290_000_000n, "the step span covers the step");
      // Result stored: each report's commit is in the trace, under the job's span.
      const commits = stored(t.spans);
      assert.ok(commits.length >= 2 && commits.length <= 3, `${commits.length} commits`);
      assert.equal(commands(t.spans), 3);
      for (const c of commits) assert.equal(c.attributes["db.system.name"], "sqlite");
      // The job's span ends when its message is acked, microseconds after the last commit; span
      // times are taken as float milliseconds, so allow them a millisecond of rounding.
      const slack = 1_000_000n;
      assert.ok(commits.every((c) => c.startNs >= proc.startNs - slack && c.endNs <= proc.endNs + slack), "stored while the job's span is open");
      assert.ok(t.spans.every((s) => s.resource["service.name"] === "vqd-test"));
    });

    it("exports the metrics under vq.*, and logs and counts a slow step", async () => {
      const failing = await enqueueViaCli(h, "broken");
      await done(h, failing, "VideoDeadLettered");
      const wanted = [
        "vq.queue.depth",
        "vq.queue.depth_alert",
        "vq.jobs.in_flight",
        "vq.jobs.completed",
        "vq.jobs.failed",
        "vq.jobs.dead_lettered",
        "vq.job.duration",
        "vq.step.duration",
        "vq.store.append.duration",
        "vq.outbox.lag",
        "vq.nats.reconnects",
        "vq.slow_operations",
        "vq.process.memory.rss",
        "vq.process.memory.heap_used",
        "vq.eventloop.delay",
      ];
      const fromDaemon = () => otlp.metrics.filter((m) => m.resource["vq.role"] === "daemon");
      await otlp.waitForMetrics(() => wanted.every((n) => fromDaemon().some((m) => m.name === n && m.points.length > 0)) && fromDaemon().some((m) => m.name === "vq.jobs.dead_lettered"), 10_000, `metrics ${wanted.join(", ")}`);
      const latest = (name: string) => fromDaemon().filter((m) => m.name === name).at(-1);
      const sumOf = (name: string, attr: string, value: string) => latest(name)?.points.find((p) => p.attributes[attr] === value)?.value;
      await otlp.waitForMetrics(() => sumOf("vq.jobs.dead_lettered", "vq.pipeline", "broken") === 1, 5000, "the dead-letter count");
      assert.ok((sumOf("vq.jobs.completed", "vq.pipeline", "two") ?? 0) >= 1);
      assert.equal(sumOf("vq.jobs.failed", "vq.pipeline", "broken"), 1);
      assert.deepEqual(latest("vq.queue.depth")?.points.map((p) => p.attributes["vq.lane"]).sort(), ["high", "low", "normal"]);
      const steps = latest("vq.step.duration");
      assert.equal(steps?.unit, "s");
      const snooze = steps?.points.find((p) => p.attributes["vq.step"] === "snooze" && p.attributes["vq.outcome"] === "completed");
      assert.ok(snooze && (snooze.count ?? 0) >= 1 && snooze.value >= 0.29, "the snooze step's duration in seconds");
      assert.ok((latest("vq.process.memory.rss")?.points[0]?.value ?? 0) > 10_000_000);

      // The 300 ms step is over the 250 ms threshold: a warning with its trace id, and a count.
      assert.ok((sumOf("vq.slow_operations", "vq.operation", "step snooze") ?? 0) >= 1);
      const warning = daemon
        ?.output()
        .split("\n")
        .filter((l) => l.includes('"slow operation: step snooze'))
        .map((l) => JSON.parse(l) as { level: number; operation: string; durationMs: number; traceId?: string })[0];
      assert.ok(warning, "a slow-operation warning for the step");
      assert.equal(warning.level, 40);
      assert.ok(warning.durationMs >= 300);
      assert.match(warning.traceId ?? "", /^[0-9a-f]{32}$/);
      assert.ok(otlp.spans.some((s) => s.traceId === warning.traceId && s.name === "step snooze"), "the logged trace id is the step's trace");
    });
  });

  describe("memory snapshots through the daemon", () => {
    let h: Harness;
    let daemon: DaemonProcess | undefined;
    before(async () => {
      h = await startHarness({ daemon: false, extra: { ...otelEnv(otlp), VQD_DEFAULTPIPELINE: "noop" } });
      daemon = h.env.spawnDaemon(["start", "--no-workers"]);
      await daemon.ready();
    });
    after(async () => {
      await stop(daemon);
      await h?.close();
    });

    it("`vqd snapshot memory` records the daemon's memory, sends it as metrics, and `vqd status` reports the snapshots", async () => {
      for (let i = 0; i < 2; i++) {
        const r = await h.env.cli(["snapshot", "memory", "--json"]);
        assert.equal(r.code, 0, r.stderr);
        const snap = JSON.parse(r.stdout) as { daemon: boolean; role: string; pid: number; rss: number; heap: Record<string, number> };
        assert.equal(snap.daemon, true);
        assert.equal(snap.role, "daemon");
        assert.equal(snap.pid, daemon?.child.pid);
        assert.ok(snap.rss > 10_000_000 && (snap.heap.heap_size_limit ?? 0) > 0);
      }
      const status = await h.env.cli(["status", "--json"]);
      const memory = (JSON.parse(status.stdout) as { memory: { snapshots: number; lastRss: number; rssPerDay: number | null } }).memory;
      assert.equal(memory.snapshots, 2);
      assert.equal(memory.rssPerDay, null, "two snapshots a second apart say nothing about a day");
      const text = await h.env.cli(["status"]);
      assert.match(text.stdout, /^memory: +2 snapshots within 0 min, last rss [\d.]+ MB; growth needs snapshots at least an hour apart$/m);
      await otlp.waitForMetrics(
        (m) => m.some((x) => x.name === "vq.memory.snapshot" && x.resource["vq.role"] === "daemon" && x.points.some((p) => p.attributes["vq.memory.field"] === "rss" && p.value > 0)),
        5000,
        "vq.memory.snapshot",
      );
    });
  });

  describe("a separate `vqd worker` process running the job", () => {
    let h: Harness;
    let daemon: DaemonProcess | undefined;
    let worker: DaemonProcess | undefined;
    const alerts: QueueDepthAlert[] = [];
    let alertSub: Subscription | undefined;
    before(async () => {
      h = await startHarness({ daemon: false, extra: { ...otelEnv(otlp), ...PIPELINES, VQD_DEFAULTPIPELINE: "noop", VQD_WORKERS__COUNT: "1" } });
      daemon = h.env.spawnDaemon(["start", "--no-workers"]);
      // The worker exports over http/json, the daemon and the CLI over http/protobuf.
      h.env.env.OTEL_EXPORTER_OTLP_PROTOCOL = "http/json";
      worker = h.env.spawnDaemon(["worker"]);
      delete h.env.env.OTEL_EXPORTER_OTLP_PROTOCOL;
      await Promise.all([daemon.ready(), worker.ready()]);
      alertSub = h.nc.subscribe(h.subjects.alert("queue_depth"), {
        callback: (_e, m) => {
          alerts.push(JSON.parse(new TextDecoder().decode(m.data)) as QueueDepthAlert);
        },
      });
    });
    after(async () => {
      alertSub?.unsubscribe();
      await stop(worker);
      await stop(daemon);
      await h?.close();
    });

    it("the worker continues the trace: its process span is the child of the daemon's send span", async () => {
      const id = await enqueueViaCli(h);
      await done(h, id);
      const p = h.subjects.prefix;
      const spans = await otlp.waitForSpans(
        (s) => s.filter((x) => x.name === `process ${p}.api.report` && s.some((y) => y.spanId === x.parentSpanId && y.resource["vq.role"] === "worker")).length >= 2,
        10_000,
        "the worker's reports to reach the daemon",
      );
      const proc = spans.find((s) => s.name === `process ${p}.jobs.normal` && s.attributes["vq.video_id"] === id) as ReceivedSpan;
      assert.ok(proc, "the worker's process span");
      assert.equal(proc.resource["vq.role"], "worker");
      assert.equal(proc.encoding, "json");
      const t = traceOf(spans, proc.traceId);
      const send = t.one(`send ${p}.jobs.normal`, "daemon");
      assert.equal(send.encoding, "protobuf");
      assertChild(proc, send);
      const chain = ancestry(proc, t.spans).map((s) => `${s.name}@${s.resource["vq.role"]}`);
      assert.deepEqual(chain, [
        `process ${p}.jobs.normal@worker`,
        `send ${p}.jobs.normal@daemon`,
        `process ${p}.api.enqueue@daemon`,
        `request ${p}.api.enqueue@cli`,
        "vqd enqueue@cli",
      ]);
      const step = t.one("step noop", "worker");
      assertChild(step, proc);
      // Result stored: the worker's reports (start, step) are requests in the job's span; the
      // daemon serves each in the same trace and stores it there.
      const requests = t.spans.filter((s) => s.name === `request ${p}.api.report` && s.resource["vq.role"] === "worker");
      assert.equal(requests.length, 2);
      for (const request of requests) {
        assertChild(request, proc);
        assert.equal(request.kind, "client");
        const served = t.spans.find((s) => s.name === `process ${p}.api.report` && s.parentSpanId === request.spanId);
        assert.ok(served, "the daemon serves the report in the same trace");
        assert.equal(served.resource["vq.role"], "daemon");
        assert.equal(served.kind, "server");
        assert.ok(t.spans.some((s) => s.name === "vq.store.append" && s.parentSpanId === served.spanId), "and stores it in the same trace");
      }
    });

    it("the queue-depth alert fires once at 101 waiting and clears below the threshold", async () => {
      await stop(worker); // nothing takes jobs now: they wait
      alerts.length = 0;
      const ids = await h.enqueue(100);
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(alerts.length, 0, "100 waiting is not above the threshold");
      ids.push(...(await h.enqueue(1)));
      await waitFor(() => alerts.length >= 1, 5000, "the alert");
      assert.equal(alerts[0]?.state, "raised");
      assert.equal(alerts[0]?.depth, 101);
      assert.equal(alerts[0]?.threshold, 100);
      ids.push(...(await h.enqueue(5)));
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(alerts.length, 1, "once per crossing");
      for (const id of ids.slice(0, 7)) await h.api.call("cancel", { id });
      await waitFor(() => alerts.length >= 2, 5000, "the cleared message");
      assert.deepEqual(
        alerts.map((a) => [a.state, a.depth]),
        [
          ["raised", 101],
          ["cleared", 99],
        ],
      );
      const warnings = (daemon?.output() ?? "").split("\n").filter((l) => l.includes('"alert":"queue_depth"') && l.includes('"level":40'));
      assert.equal(warnings.length, 1, "one warning");
      const status = await h.api.call<"status", { alerts: { queueDepth: boolean } }>("status", {});
      assert.equal(status.alerts.queueDepth, false);
      const counts = await otlp.waitForMetrics(
        (m) => m.some((x) => x.name === "vq.alerts" && x.resource["vq.role"] === "daemon" && x.points.some((p) => p.attributes["vq.alert.state"] === "cleared")),
        5000,
        "the vq.alerts metric",
      );
      const last = counts.filter((m) => m.name === "vq.alerts" && m.resource["vq.role"] === "daemon").at(-1);
      assert.equal(last?.points.find((p) => p.attributes["vq.alert.state"] === "raised")?.value, 1);
    });
  });

  describe("OTEL_SDK_DISABLED=true", () => {
    let quiet: OtlpReceiver;
    let h: Harness;
    let daemon: DaemonProcess | undefined;
    before(async () => {
      quiet = await startOtlpReceiver();
      h = await startHarness({ daemon: false, extra: { ...otelEnv(quiet), OTEL_SDK_DISABLED: "true", VQD_DEFAULTPIPELINE: "noop" } });
      daemon = h.env.spawnDaemon(["start"]);
      await daemon.ready();
    });
    after(async () => {
      await stop(daemon);
      await h?.close();
      await quiet.close();
    });

    it("sends nothing: no span, no metric, from the CLI or the daemon", async () => {
      const id = await enqueueViaCli(h);
      await done(h, id);
      await new Promise((r) => setTimeout(r, 1200)); // > two metric intervals
      assert.equal(await stop(daemon), 0);
      assert.deepEqual(quiet.requests, {});
    });
  });

  describe("a collector that never answers", () => {
    let hole: Server;
    const sockets = new Set<Socket>();
    let h: Harness;
    let daemon: DaemonProcess | undefined;
    before(async () => {
      hole = createServer((s) => {
        sockets.add(s);
        s.on("error", () => {});
      });
      await new Promise<void>((r) => hole.listen(0, "127.0.0.1", () => r()));
      const a = hole.address();
      const port = typeof a === "object" && a ? a.port : 0;
      h = await startHarness({ daemon: false, extra: { ...otelEnv({ url: `http://127.0.0.1:${port}` }), VQD_DEFAULTPIPELINE: "noop", VQD_WORKERS__SHUTDOWNDEADLINEMS: "500" } });
      daemon = h.env.spawnDaemon(["start"]);
      await daemon.ready();
    });
    after(async () => {
      await stop(daemon);
      await h?.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => hole.close(r));
    });

    it("never blocks or crashes job processing; the CLI and the daemon still exit promptly", async () => {
      const t0 = Date.now();
      const id = await enqueueViaCli(h);
      assert.ok(Date.now() - t0 < 6000, `the CLI took ${Date.now() - t0} ms`);
      await done(h, id);
      const ids = await h.enqueue(20);
      await waitFor(() => ids.every((v) => h.events.some((e) => e.videoId === v && e.type === "VideoCompleted")), 10_000, "20 more jobs");
      const s0 = Date.now();
      assert.equal(await stop(daemon), 0);
      assert.ok(Date.now() - s0 < 9000, `the daemon took ${Date.now() - s0} ms to stop`);
    });
  });
});
