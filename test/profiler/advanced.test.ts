/**
 * `vqd profile advanced` end to end on the real components: the built CLI with --quick (noop
 * pipeline), and in process with `--pipeline default` on clips it makes with ffmpeg.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { loadConfig } from "../../src/config/index.js";
import { runProfile, type ReportFiles } from "../../src/profiler/index.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { baseEnv, vqd } from "./cli-run.js";
import { assertReportFiles, assertValidReport, figure, streamNames, target } from "./helpers.js";

let srv: TestNatsServer;
let root: string;

before(async () => {
  srv = await startNatsServer();
  root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "vqd-profile-adv-")));
});

after(async () => {
  await srv.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

describe("vqd profile advanced", () => {
  test("--quick through the built CLI: every step on the real components, a report that validates", async () => {
    const env = baseEnv({ VQD_DATADIR: path.join(root, "data"), VQD_NATS__SERVERS: srv.url });
    const r = await vqd(["profile", "advanced", "--quick", "--json"], env, { cwd: root });
    assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}\n${r.stderr}`);
    const out = JSON.parse(r.stdout) as { report: unknown; files: ReportFiles };
    assertValidReport(out.report);
    const report = out.report;
    assert.deepEqual(assertReportFiles(out.files, "advanced"), report);
    assert.match(path.basename(out.files.json), /^advanced_profile_\d{8}_\d{6}\.json$/);
    assert.equal(r.code, report.verdict.pass ? 0 : 1);
    assert.deepEqual(
      report.sections.map((s) => [s.id, s.error ?? null]),
      [
        ["concurrent", null],
        ["leak", null],
        ["storm", null],
        ["db_stress", null],
        ["queue_stress", null],
      ],
    );
    assert.equal(report.options.pipeline, "noop");
    assert.equal(report.options.concurrentVideos, 20);
    assert.ok((figure(report, "concurrent.videos_s") as number) > 0);
    assert.equal(figure(report, "leak.iterations"), 10);
    assert.equal(typeof figure(report, "leak.growth_kb_per_iteration"), "number");
    assert.equal(target(report, "leak.growth").source, "config");
    assert.equal(target(report, "leak.growth").threshold, 10);
    assert.equal(figure(report, "storm.received"), 10_000);
    assert.equal(target(report, "storm.delivered").pass, true);
    assert.equal(figure(report, "db_stress.ops"), 1000);
    assert.equal(target(report, "db_stress.ops").threshold, 7700);
    assert.ok((figure(report, "queue_stress.jobs_s") as number) > 0);
    assert.ok((figure(report, "queue_stress.durable_jobs_s") as number) > 0);
    const leakNotes = report.sections.find((s) => s.id === "leak")?.notes.join(" ") ?? "";
    assert.match(leakNotes, /Verdict: (no leak detected|POSSIBLE LEAK) \(growth .* threshold 10 KB\/iteration/);
    assert.deepEqual((await streamNames(srv.url)).filter((n) => n.startsWith("VQP_")), []);
    for (let i = 1; i <= 5; i++) assert.match(r.stderr, new RegExp(`profile advanced \\[${i}/5\\] .* done in `));
  });

  test("--pipeline default runs probe, thumbnail and transcode on clips made with ffmpeg", async () => {
    const config = loadConfig({ env: { VQD_DATADIR: path.join(root, "data2"), VQD_NATS__SERVERS: srv.url }, cwd: root });
    const { report, files } = await runProfile({
      kind: "advanced",
      config,
      quick: true,
      pipeline: "default",
      only: ["concurrent"],
      plan: { concurrentVideos: 4, clips: 2 },
    });
    assertReportFiles(files, "advanced");
    const s = report.sections[0];
    assert.equal(s?.id, "concurrent");
    assert.equal(s?.error, undefined, s?.error);
    assert.match(s?.method ?? "", /pipeline "default": probe -> thumbnail -> transcode/);
    assert.match(s?.method ?? "", /2 clips of 2 s 640x360 H\.264\/AAC made with ffmpeg lavfi/);
    assert.ok((figure(report, "concurrent.total_s") as number) > 0);
    assert.equal(report.options.pipeline, "default");
    assert.equal(report.options.only, "concurrent");
    // Only the steps that ran are judged.
    assert.deepEqual(report.targets, []);
    assert.equal(report.verdict.pass, true);
  });
});
