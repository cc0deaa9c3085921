/**
 * `vqd profile basic` end to end on the real components: the built CLI against a real
 * nats-server (the daemon's, as configured), then a second run in process with no reachable
 * NATS (the profiler starts its own server) that is compared with the first and charted.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { loadConfig } from "../../src/config/index.js";
import { runProfile, type ProfileReport, type ReportFiles } from "../../src/profiler/index.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { baseEnv, vqd } from "./cli-run.js";
import { assertReportFiles, assertValidReport, figure, streamNames, target } from "./helpers.js";

let srv: TestNatsServer;
let root: string;
let first: { report: ProfileReport; files: ReportFiles } | undefined;

before(async () => {
  srv = await startNatsServer();
  root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "vqd-profile-basic-")));
});

after(async () => {
  await srv.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

describe("vqd profile basic --quick", () => {
  test("measures every step on the real components and writes JSON, Markdown and SVG that validate", async () => {
    const env = baseEnv({ VQD_DATADIR: path.join(root, "data"), VQD_NATS__SERVERS: srv.url });
    const r = await vqd(["profile", "basic", "--quick", "--json"], env, { cwd: root });
    assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}\n${r.stderr}`);
    const out = JSON.parse(r.stdout) as { report: unknown; files: ReportFiles };
    assertValidReport(out.report);
    const report = out.report;
    assert.equal(r.code, report.verdict.pass ? 0 : 1, "exit code follows the verdict");
    const onDisk = assertReportFiles(out.files, "basic");
    assert.deepEqual(onDisk, report);
    assert.equal(path.dirname(out.files.json), path.join(root, "data", "reports"), "written to reportsDir");
    first = { report, files: out.files };

    assert.equal(report.kind, "basic");
    assert.equal(report.quick, true);
    assert.equal(report.trigger, "cli");
    assert.deepEqual(
      report.sections.map((s) => [s.id, s.error ?? null]),
      [
        ["startup", null],
        ["idle", null],
        ["db", null],
        ["bus", null],
        ["queue", null],
      ],
    );
    for (const s of report.sections) for (const f of s.figures) assert.notEqual(f.value, null, `${f.id} measured`);

    // Startup: the runs and the node baseline, in seconds; the ratio is theirs.
    const startup = report.sections.find((s) => s.id === "startup")?.figures.find((f) => f.id === "startup.median_s");
    assert.equal(startup?.samples?.length, 2);
    assert.equal(startup?.unit, "s");
    assert.equal(startup?.reference, 0.002);
    const ratio = (figure(report, "startup.median_s") as number) / (figure(report, "startup.node_median_s") as number);
    assert.ok(Math.abs(ratio - (figure(report, "startup.vs_node_x") as number)) / ratio < 0.01);
    // Idle: min <= avg <= max, a plausible Node daemon.
    const [lo, avg, hi] = ["idle.rss_min_mb", "idle.rss_avg_mb", "idle.rss_max_mb"].map((id) => figure(report, id) as number);
    assert.ok((lo as number) <= (avg as number) && (avg as number) <= (hi as number) && (lo as number) > 20 && (hi as number) < 1000, `${lo} ${avg} ${hi}`);
    assert.ok((figure(report, "idle.cpu_pct") as number) >= 0);
    // Every event delivered, every job through the queue.
    assert.equal(figure(report, "bus.delivered"), 2000);
    assert.equal(figure(report, "bus.delivered_pct"), 100);
    assert.equal(figure(report, "queue.jobs"), 200);

    // The reference app's three targets and DESIGN.md's, each judged on its figure.
    for (const id of ["startup.under_3s", "idle.memory_150", "idle.cpu_5"]) assert.equal(target(report, id).source, "reference");
    for (const id of ["startup.vs_node", "idle.memory_90", "idle.cpu_0_5", "db.append_vs_raw", "bus.delivered"]) assert.equal(target(report, id).source, "design");
    assert.equal(target(report, "idle.memory_90").value, figure(report, "idle.rss_max_mb"));
    assert.equal(target(report, "bus.delivered").pass, true);
    for (const t of report.targets) assert.equal(typeof t.pass, "boolean", `${t.id} judged`);

    // Environment and isolation.
    assert.equal(report.environment.node, process.version);
    assert.match(report.environment.natsServer ?? "", /^\d+\.\d+\.\d+/);
    assert.match(report.environment.sqlite ?? "", /^3\.\d+/);
    assert.equal(report.environment.cpuCount, os.cpus().length);
    assert.equal(report.isolation.nats, "daemon");
    assert.ok(report.isolation.natsUrl.endsWith(`:${srv.port}`));
    assert.match(report.isolation.stream, /^VQP_[0-9A-F]{10}_\*$/);
    assert.match(report.isolation.subjectPrefix, /^vqprof\.[0-9a-f]{10}$/);
    assert.ok(!fs.existsSync(report.isolation.scratchDir), "scratch directory removed");
    assert.deepEqual((await streamNames(srv.url)).filter((n) => n.startsWith("VQP_")), [], "the run's streams are deleted");

    // Progress: one line per step when stderr is not a terminal.
    for (let i = 1; i <= 5; i++) assert.match(r.stderr, new RegExp(`profile basic \\[${i}/5\\] .* done in `));
    const md = fs.readFileSync(out.files.markdown, "utf8");
    assert.match(md, /compared with \| nothing: the first report of its kind/);
    assert.match(md, /\| start to ready, median \| [\d.]+ s \| 0\.002 s \|/);
  });

  test("with no reachable NATS it starts its own server; a second run is compared with the previous one and charted", async () => {
    assert.ok(first, "the first test ran");
    // No nats.servers and no running daemon: nothing to connect to.
    const config = loadConfig({ env: { VQD_DATADIR: path.join(root, "data") }, cwd: root });
    assert.deepEqual(config.nats.servers, []);
    const { report, files } = await runProfile({
      kind: "basic",
      config,
      quick: true,
      plan: { startupRuns: 1, settleMs: 100, idleWindowMs: 500, dbReps: 1, busEvents: 1000, queueJobs: 50 },
    });
    const onDisk = assertReportFiles(files, "basic");
    assert.deepEqual(onDisk, report);
    assert.equal(report.trigger, "api");
    assert.equal(report.isolation.nats, "own");
    const url = new URL(report.isolation.natsUrl.replace(/^nats:/, "http:"));
    assert.equal(url.hostname, "127.0.0.1");
    assert.notEqual(url.port, "4222");
    assert.equal(report.sections.filter((s) => s.error).length, 0, JSON.stringify(report.sections.map((s) => s.error)));

    assert.equal(files?.previous, first.files.json);
    const md = fs.readFileSync(files?.markdown as string, "utf8");
    assert.ok(md.includes(`compared with | ${path.basename(first.files.json)}`), "names the previous report");
    // The headline table shows the previous value and the change in percent.
    const row = md.split("\n").find((l) => l.startsWith("| start to ready, median |"));
    assert.match(row ?? "", /\| [\d.]+ s \| 0\.002 s \| [\d.]+ s \| [+-]?[\d.]+%( better| \*\*worse\*\*)? \|$/);
    const svg = fs.readFileSync(files?.svg as string, "utf8");
    assert.match(svg, /over the last 2 runs/);
    assert.ok((svg.match(/<polyline /g) ?? []).length >= 4, "one line per headline figure");
  });
});
