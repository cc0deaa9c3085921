/**
 * Report files without running a suite: names, the previous report and the trend, retention,
 * and `vqd profile compare`. The reports here are built by hand and validated against the schema
 * like real ones.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { compareReports, listReports, reportBaseName, writeReport, type Comparison, type ProfileReport, type SuiteKind } from "../../src/profiler/index.js";
import { baseEnv, vqd } from "./cli-run.js";
import { assertReportFiles, assertValidReport } from "./helpers.js";

let root: string;
let dirs = 0;

before(() => {
  root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "vqd-reports-")));
});

after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const freshDir = (): string => {
  const d = path.join(root, `d${++dirs}`);
  fs.mkdirSync(d);
  return d;
};

/** A basic-suite report with the given startup and throughput figures. */
function makeReport(at: string, v: { startup: number; events: number; rss: number }, kind: SuiteKind = "basic", quick = true): ProfileReport {
  const pass = v.startup < 3;
  return {
    schemaVersion: 1,
    kind,
    quick,
    startedAt: at,
    finishedAt: at,
    durationS: 12.5,
    trigger: "api",
    options: { startupRuns: 2 },
    environment: {
      node: process.version,
      v8: process.versions.v8,
      natsServer: "2.9.10",
      sqlite: "3.46.1",
      ffmpeg: null,
      vqd: "0.1.0",
      platform: "linux",
      arch: "x64",
      osRelease: "6.1.0",
      cpuModel: "Test CPU",
      cpuCount: 2,
      totalMemoryMB: 4096,
      hostname: "test-host",
      git: { commit: "0123456789abcdef0123456789abcdef01234567", dirty: false },
    },
    isolation: { nats: "own", natsUrl: "nats://127.0.0.1:40001", stream: "VQP_0123456789_*", subjectPrefix: "vqprof.0123456789", scratchDir: "/tmp/vqd-profile-x" },
    sections: [
      {
        id: "startup",
        title: "startup",
        method: "spawn",
        durationS: 2,
        figures: [
          { id: "startup.median_s", label: "start to ready, median", value: v.startup, unit: "s", better: "lower", reference: 0.002, headline: true, samples: [v.startup, v.startup] },
          { id: "startup.node_median_s", label: "node -e 0", value: 0.05, unit: "s", better: "none" },
        ],
        notes: [],
      },
      {
        id: "bus",
        title: "event bus",
        method: "storm",
        durationS: 1,
        figures: [{ id: "bus.events_s", label: "throughput", value: v.events, unit: "events/s", better: "higher", headline: true }],
        notes: ["a note | with a pipe"],
      },
      {
        id: "idle",
        title: "idle",
        method: "rss",
        durationS: 10,
        figures: [{ id: "idle.rss_max_mb", label: "idle RSS, max", value: v.rss, unit: "MB", better: "lower", headline: true }],
        notes: [],
      },
    ],
    targets: [
      { id: "startup.under_3s", label: "daemon start to ready < 3 s", figure: "startup.median_s", op: "<", threshold: 3, unit: "s", source: "reference", value: v.startup, pass },
      { id: "idle.memory_90", label: "idle RSS <= 90 MB", figure: "idle.rss_max_mb", op: "<=", threshold: 90, unit: "MB", source: "design", value: v.rss, pass: v.rss <= 90 },
    ],
    verdict: { pass: pass && v.rss <= 90, targets: 2, passed: (pass ? 1 : 0) + (v.rss <= 90 ? 1 : 0), failed: (pass ? 0 : 1) + (v.rss <= 90 ? 0 : 1), notMeasured: 0, errors: 0 },
  };
}

describe("report files", () => {
  test("names are <kind stem>_YYYYMMDD_HHMMSS in UTC", () => {
    assert.equal(reportBaseName("basic", new Date("2025-03-04T05:06:07.890Z")), "performance_report_20250304_050607");
    assert.equal(reportBaseName("advanced", new Date("2025-12-31T23:59:59Z")), "advanced_profile_20251231_235959");
  });

  test("each report is compared with the previous one of its kind, charted, and the oldest pruned beyond the retention count", async () => {
    const dir = freshDir();
    const runs = [
      ["2025-01-01T03:00:00.000Z", { startup: 0.5, events: 100_000, rss: 80 }],
      ["2025-01-02T03:00:00.000Z", { startup: 0.4, events: 120_000, rss: 85 }],
      ["2025-01-03T03:00:00.000Z", { startup: 0.6, events: 90_000, rss: 95 }],
      ["2025-01-04T03:00:00.000Z", { startup: 0.3, events: 150_000, rss: 70 }],
    ] as const;
    const written = [];
    for (const [at, v] of runs) {
      const r = makeReport(at, v);
      assertValidReport(JSON.parse(JSON.stringify(r)));
      written.push(await writeReport(dir, r, { retention: 3 }));
    }
    // An advanced report in the same directory is neither compared nor pruned with them.
    const adv = await writeReport(dir, makeReport("2025-01-01T04:00:00.000Z", { startup: 1, events: 1, rss: 1 }, "advanced"), { retention: 3 });
    assert.equal(adv.previous, null);

    const last = written[3];
    assert.ok(last);
    assertReportFiles(last, "basic");
    assert.equal(path.basename(last.previous ?? ""), "performance_report_20250103_030000.json");
    assert.deepEqual(last.pruned.map((f) => path.basename(f)).sort(), ["performance_report_20250101_030000.json", "performance_report_20250101_030000.md", "performance_report_20250101_030000.svg"]);
    assert.deepEqual(
      (await listReports(dir, "basic")).map((e) => e.base),
      ["performance_report_20250102_030000", "performance_report_20250103_030000", "performance_report_20250104_030000"],
    );
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith("advanced_profile_")).length, 3);

    const md = fs.readFileSync(last.markdown, "utf8");
    assert.match(md, /\*\*Verdict: PASS\*\*: all 2 targets met\./);
    assert.match(md, /compared with \| performance_report_20250103_030000\.json/);
    // 0.6 s -> 0.3 s startup is 50% better; 90,000 -> 150,000 events/s is 67% better.
    assert.match(md, /\| start to ready, median \| 0\.3 s \| 0\.002 s \| 0\.6 s \| -50% better \|/);
    assert.match(md, /\| throughput \| 150,000 events\/s \| - \| 90,000 events\/s \| \+67% better \|/);
    assert.match(md, /- a note \| with a pipe/);
    assert.match(md, /!\[headline figures over the last 4 basic runs\]\(performance_report_20250104_030000\.svg\)/);
    const svg = fs.readFileSync(last.svg, "utf8");
    assert.match(svg, /over the last 4 runs/);
    // One panel per headline figure, each a line through the four runs.
    const lines = svg.match(/<polyline [^>]*points="([^"]+)"/g) ?? [];
    assert.equal(lines.length, 3);
    for (const l of lines) assert.equal((/points="([^"]+)"/.exec(l)?.[1] ?? "").split(" ").length, 4);

    // The third run missed the RSS target: its Markdown says so.
    const third = fs.readFileSync(written[2]?.markdown as string, "utf8");
    assert.match(third, /\*\*Verdict: FAIL\*\*: 1 of 2 targets missed \(idle RSS <= 90 MB\)/);
    assert.match(third, /\| idle RSS <= 90 MB \| DESIGN\.md \| 95 MB \| \*\*FAIL\*\* \|/);
  });

  test("two runs in the same second get distinct names; quick runs are not compared with full ones", async () => {
    const dir = freshDir();
    const a = await writeReport(dir, makeReport("2025-02-01T00:00:00.000Z", { startup: 0.5, events: 1, rss: 1 }, "basic", false), { retention: 0 });
    const b = await writeReport(dir, makeReport("2025-02-01T00:00:00.000Z", { startup: 0.5, events: 1, rss: 1 }, "basic", true), { retention: 0 });
    assert.equal(path.basename(a.json), "performance_report_20250201_000000.json");
    assert.equal(path.basename(b.json), "performance_report_20250201_000000_2.json");
    assert.equal(b.previous, null, "a quick run is not compared with a full one");
  });
});

describe("vqd profile compare", () => {
  test("prints what changed and by how much; --json gives the same as data", async () => {
    const dir = freshDir();
    const a = path.join(dir, "a.json");
    const b = path.join(dir, "b.json");
    fs.writeFileSync(a, JSON.stringify(makeReport("2025-01-01T00:00:00.000Z", { startup: 0.5, events: 100_000, rss: 80 })));
    fs.writeFileSync(b, JSON.stringify(makeReport("2025-01-08T00:00:00.000Z", { startup: 0.75, events: 102_000, rss: 120 })));
    const env = baseEnv({ VQD_DATADIR: path.join(dir, "data") });

    const text = await vqd(["profile", "compare", a, b], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^basic profile: a\.json \(2025-01-01T00:00:00\.000Z\) -> b\.json \(2025-01-08T00:00:00\.000Z\)/);
    assert.match(text.stdout, /start to ready, median\s+0\.5 s\s+0\.75 s\s+\+50%\s+WORSE/);
    assert.match(text.stdout, /throughput\s+100,000 events\/s\s+102,000 events\/s\s+\+2\.0%\s+same/);
    assert.match(text.stdout, /idle RSS, max\s+80 MB\s+120 MB\s+\+50%\s+WORSE/);
    assert.match(text.stdout, /0 better, 2 worse/);
    assert.match(text.stdout, /targets whose verdict changed:\n {2}idle RSS <= 90 MB: pass -> FAIL/);

    const json = await vqd(["profile", "compare", a, b, "--json", "--threshold", "1"], env);
    assert.equal(json.code, 0, json.stderr);
    const c = JSON.parse(json.stdout) as Comparison;
    const events = c.figures.find((f) => f.id === "bus.events_s");
    assert.equal(events?.direction, "better", "2% counts with --threshold 1");
    assert.equal(events?.delta, 2000);
    assert.equal(Math.round((events?.pct ?? 0) * 10) / 10, 2);
    assert.deepEqual(c, compareReports(JSON.parse(fs.readFileSync(a, "utf8")) as ProfileReport, JSON.parse(fs.readFileSync(b, "utf8")) as ProfileReport, 1));

    fs.writeFileSync(path.join(dir, "junk.json"), "{}");
    const bad = await vqd(["profile", "compare", a, path.join(dir, "junk.json")], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /junk\.json is not a readable vqd profile report/);
    const usage = await vqd(["profile", "compare", a], env);
    assert.equal(usage.code, 2);
  });

  test("comparing across machines or counts warns", () => {
    const a = makeReport("2025-01-01T00:00:00.000Z", { startup: 0.5, events: 1, rss: 1 });
    const b = { ...makeReport("2025-01-02T00:00:00.000Z", { startup: 0.5, events: 1, rss: 1 }), quick: false };
    const c = compareReports(a, { ...b, environment: { ...b.environment, hostname: "other" } });
    assert.equal(c.warnings.length, 2);
    assert.match(c.warnings.join("\n"), /--quick/);
    assert.match(c.warnings.join("\n"), /different machines/);
  });
});
