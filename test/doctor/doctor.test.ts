/**
 * `vqd doctor` as an operator runs it (the built CLI as a child process): a healthy setup passes
 * every check and exits 0; each broken setup gets a FAIL line naming the problem with a fix hint,
 * and exit code 1.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, open, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { DoctorReport } from "../../src/doctor/index.js";
import { openDatabase } from "../../src/store/index.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { makeVqdEnv, type CliResult, type VqdEnv } from "../support/vqd-env.js";

const BASE = { VQD_TELEMETRY__ENABLED: "false" };

interface Line {
  status: string;
  name: string;
  rest: string;
}

/** `ok    name  detail  (fix: hint)` -> { status, name, rest }. */
function parseLines(stdout: string): Line[] {
  return stdout
    .trimEnd()
    .split("\n")
    .map((line) => {
      const m = /^(ok|warn|FAIL) {2,}(\S+(?: \S+)?) {2,}(.*)$/.exec(line);
      assert.ok(m, `not a doctor line: ${JSON.stringify(line)}`);
      return { status: m[1] as string, name: m[2] as string, rest: m[3] as string };
    });
}

function line(lines: Line[], name: string): Line {
  const l = lines.find((x) => x.name === name);
  assert.ok(l, `no "${name}" line in ${JSON.stringify(lines)}`);
  return l;
}

async function seedDatabase(env: VqdEnv): Promise<string> {
  const file = env.config().database.file;
  const db = await openDatabase({ file });
  await db.close();
  return file;
}

describe("vqd doctor", () => {
  let srv: TestNatsServer;
  const envs: VqdEnv[] = [];
  const makeEnv = async (options: Parameters<typeof makeVqdEnv>[0]): Promise<VqdEnv> => {
    const env = await makeVqdEnv(options);
    envs.push(env);
    return env;
  };
  before(async () => {
    srv = await startNatsServer();
  });
  after(async () => {
    for (const e of envs) await e.cleanup();
    await srv?.stop();
  });

  it("passes every check on a healthy setup and exits 0", async () => {
    const env = await makeEnv({ natsUrl: srv.url, extra: BASE });
    await seedDatabase(env);
    const r = await env.cli(["doctor"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const lines = parseLines(r.stdout);
    assert.deepEqual(
      lines.map((l) => l.name),
      ["node", "config", "nats-server", "ffmpeg", "ffprobe", "systemd-notify", "spawn helper", "nats", "jetstream", "data dir", "database", "output space", "allowed roots"],
    );
    for (const l of lines) assert.equal(l.status, "ok", `${l.name}: ${l.rest}`);
    assert.match(line(lines, "nats").rest, new RegExp(`connected to ${srv.url} \\(nats-server 2\\.`));
    assert.match(line(lines, "jetstream").rest, /^enabled/);
    assert.match(line(lines, "database").rest, /integrity ok, 0 events, 0 videos/);
    assert.match(line(lines, "allowed roots").rest, new RegExp(env.videosDir));
    assert.match(line(lines, "spawn helper").rest, /^Python 3\.\d+\.\d+ \(.*python3\): step programs are started with posix_spawn/);

    const j = await env.cli(["doctor", "--json"]);
    assert.equal(j.code, 0, j.stderr);
    assert.ok(j.stdout.startsWith("{"), `no JSON on stdout; stderr: ${j.stderr}`);
    const report = JSON.parse(j.stdout) as DoctorReport;
    assert.equal(report.ok, true);
    assert.equal(report.checks.length, 13);
    assert.ok(report.checks.every((c) => c.status === "ok" && c.fix === undefined), j.stdout);
  });

  it("reports the spawn helper as off when the config turns it off", async () => {
    const env = await makeEnv({ natsUrl: srv.url, extra: { ...BASE, VQD_WORKERS__SPAWNHELPER: "false" } });
    await seedDatabase(env);
    const r = await env.cli(["doctor"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const l = line(parseLines(r.stdout), "spawn helper");
    assert.equal(l.status, "ok");
    assert.match(l.rest, /^off \(workers\.spawnHelper: false\)/);
  });

  it("fails without the nats-server binary (embedded mode) and says how to fix it", async () => {
    const env = await makeEnv({ extra: { ...BASE, VQD_NATS__EMBEDDED__BINARY: "/nonexistent/nats-server" } });
    await seedDatabase(env);
    const r = await env.cli(["doctor"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const lines = parseLines(r.stdout);
    const l = line(lines, "nats-server");
    assert.equal(l.status, "FAIL");
    assert.match(l.rest, /^not found: "\/nonexistent\/nats-server" {2}\(fix: apt-get install nats-server, or set nats\.embedded\.binary/);
    // No daemon runs, so its embedded server is not up: a warning, not a failure.
    assert.equal(line(lines, "nats").status, "warn");
    assert.match(line(lines, "nats").rest, /daemon not running/);
    assert.deepEqual(lines.filter((x) => x.status === "FAIL").map((x) => x.name), ["nats-server"]);
  });

  it("fails when the data dir cannot be written, even by root", async () => {
    // Tests run as root, and root ignores permission bits (chmod 0500 stops nobody), so take a
    // path no one can create: a data dir below a regular file (ENOTDIR for every user).
    const env = await makeEnv({ natsUrl: srv.url, extra: BASE });
    const blocker = join(env.root, "not-a-dir");
    await writeFile(blocker, "a regular file\n");
    env.env.VQD_DATADIR = join(blocker, "data");
    const r = await env.cli(["doctor"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const dataDir = line(parseLines(r.stdout), "data dir");
    assert.equal(dataDir.status, "FAIL");
    assert.match(dataDir.rest, /a parent of it is a file, not a directory {2}\(fix: set dataDir to a path under a directory\)$/);

    // And a data dir that is itself a file.
    env.env.VQD_DATADIR = blocker;
    const r2 = await env.cli(["doctor", "--json"]);
    assert.equal(r2.code, 1, r2.stdout + r2.stderr);
    assert.ok(r2.stdout.startsWith("{"), `no JSON on stdout; stderr: ${r2.stderr}`);
    const report = JSON.parse(r2.stdout) as DoctorReport;
    assert.equal(report.ok, false);
    const check = report.checks.find((c) => c.name === "data dir");
    assert.equal(check?.status, "fail");
    assert.match(check?.detail ?? "", /is not a directory/);
    assert.ok(check?.fix);
  });

  it("fails on a corrupt database file and points at the backup", async () => {
    const env = await makeEnv({ natsUrl: srv.url, extra: BASE });
    await mkdir(env.dataDir, { recursive: true });
    const file = env.config().database.file;
    await writeFile(file, randomBytes(64 * 1024));
    const r = await env.cli(["doctor"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const db = line(parseLines(r.stdout), "database");
    assert.equal(db.status, "FAIL");
    assert.match(db.rest, /cannot be read as a SQLite database: file is not a database {2}\(fix: stop vqd, move the damaged file aside and restore the last backup/);
  });

  it("fails PRAGMA integrity_check on a database with damaged pages", async () => {
    const env = await makeEnv({ natsUrl: srv.url, extra: BASE });
    const file = await seedDatabase(env);
    const files = await env.videos(300);
    const add = await env.cli(["enqueue", ...files], { timeoutMs: 60_000 });
    assert.equal(add.code, 0, add.stderr);
    // Overwrite the middle pages (the header and schema on page 1 stay readable).
    const size = (await stat(file)).size;
    assert.ok(size > 8 * 4096, `database too small to damage: ${size}`);
    const fh = await open(file, "r+");
    await fh.write(randomBytes(size - 2 * 4096), 0, size - 2 * 4096, 4096);
    await fh.close();
    const r = await env.cli(["doctor"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const db = line(parseLines(r.stdout), "database");
    assert.equal(db.status, "FAIL", db.rest);
    assert.match(db.rest, /(failed PRAGMA integrity_check|malformed|not a database)/);
    assert.match(db.rest, /\(fix: stop vqd/);
  });

  it("reports an invalid config as a FAIL line naming the key, and exits 1", async () => {
    const env = await makeEnv({ natsUrl: srv.url, extra: { ...BASE, VQD_WORKERS__COUNT: "0" } });
    const r: CliResult = await env.cli(["doctor"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const lines = parseLines(r.stdout);
    const config = line(lines, "config");
    assert.equal(config.status, "FAIL");
    assert.match(config.rest, /workers\.count: must be an integer between 1 and 64 \(got 0\) \[from VQD_WORKERS__COUNT\]/);
    assert.equal(line(lines, "node").status, "ok");
  });

  it("fails when the NATS server has no JetStream", async () => {
    const plain = await startNatsServer({ jetstream: false });
    try {
      const env = await makeEnv({ natsUrl: plain.url, extra: BASE });
      await seedDatabase(env);
      const r = await env.cli(["doctor"]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const lines = parseLines(r.stdout);
      assert.equal(line(lines, "nats").status, "ok");
      const js = line(lines, "jetstream");
      assert.equal(js.status, "FAIL");
      assert.match(js.rest, /not enabled.*\(fix: run nats-server with -js/);
    } finally {
      await plain.stop();
    }
  });

  it("warns when no allowed roots are configured and fails when one does not exist", async () => {
    const env = await makeEnv({ natsUrl: srv.url, extra: { ...BASE, VQD_ALLOWEDROOTS: "[]" } });
    await seedDatabase(env);
    const r = await env.cli(["doctor"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(line(parseLines(r.stdout), "allowed roots").status, "warn");

    env.env.VQD_ALLOWEDROOTS = `[${env.videosDir}, ${join(env.root, "missing")}]`;
    const r2 = await env.cli(["doctor"]);
    assert.equal(r2.code, 1, r2.stdout);
    const roots = line(parseLines(r2.stdout), "allowed roots");
    assert.equal(roots.status, "FAIL");
    assert.match(roots.rest, /missing: does not exist/);
  });
});
