/**
 * A deliberately slowed component fails its target in the report. The slowness is injected with
 * runProfile's `inject: { dbDelayMs }` option (a program-only option: neither the CLI nor the
 * schedule can set it), which wraps the data layer the suites measure (VideoStore and
 * SqliteEventStore) so that every call first blocks for that long, as slow storage would.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { loadConfig, type Config } from "../../src/config/index.js";
import { runProfile } from "../../src/profiler/index.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { assertReportFiles, figure, target } from "./helpers.js";

let srv: TestNatsServer;
let root: string;
let config: Config;

before(async () => {
  srv = await startNatsServer();
  root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "vqd-profile-slow-")));
  config = loadConfig({ env: { VQD_DATADIR: path.join(root, "data"), VQD_NATS__SERVERS: srv.url }, cwd: root });
});

after(async () => {
  await srv.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

describe("a slowed component fails its target", () => {
  test("basic: the data layer held up 1 ms per call misses 'append <= 1.5x raw'", async () => {
    const plan = { dbAppends: 200, dbReads: 20, dbUpdates: 20, dbBulk: 200, dbReps: 3 };
    const control = await runProfile({ kind: "basic", config, quick: true, only: ["db"], plan });
    const slowed = await runProfile({ kind: "basic", config, quick: true, only: ["db"], plan, inject: { dbDelayMs: 1 } });
    assertReportFiles(slowed.files, "basic");

    // The ratio alone can be noisy on a busy machine; the injected 1 ms dwarfs the noise.
    const t = target(slowed.report, "db.append_vs_raw");
    assert.equal(t.pass, false);
    assert.ok((t.value as number) > 5, `slowed append is ${t.value}x raw`);
    assert.ok((t.value as number) > 3 * (figure(control.report, "db.append_vs_raw_x") as number), "the injection, not the machine, made it fail");
    assert.ok((figure(slowed.report, "db.append_us") as number) >= 1000, "1 ms per call");
    assert.equal(slowed.report.verdict.pass, false);
    assert.ok(slowed.report.verdict.failed >= 1);
    assert.equal(slowed.report.options.injectedDbDelayMs, 1);
    const md = fs.readFileSync(slowed.files?.markdown as string, "utf8");
    assert.match(md, /\*\*Verdict: FAIL\*\*: \d+ of 3 targets missed \(append through the data layer <= 1\.5x raw better-sqlite3/);
    assert.match(md, /\| append through the data layer <= 1\.5x raw better-sqlite3 \| DESIGN\.md \| [\d.,]+ x \| \*\*FAIL\*\* \|/);
    assert.match(md, /INJECTED: every data-layer call was delayed by 1 ms/);
  });

  test("advanced: the same slowness takes DB stress below 7,700 ops/s", async () => {
    const { report, files } = await runProfile({ kind: "advanced", config, quick: true, only: ["db_stress"], plan: { dbStressOps: 300 }, inject: { dbDelayMs: 1 } });
    assertReportFiles(files, "advanced");
    const t = target(report, "db_stress.ops");
    assert.equal(t.pass, false);
    assert.ok((t.value as number) < 1000, `${t.value} ops/s with 1 ms per call`);
    assert.equal(report.verdict.pass, false);
    assert.deepEqual(
      report.targets.map((x) => x.id),
      ["db_stress.ops"],
    );
  });
});
