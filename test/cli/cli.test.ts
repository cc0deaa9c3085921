/**
 * End-to-end tests of the built `vqd` binary: every case spawns `node dist/src/bin/vqd.js` with a
 * clean environment (no VQD_* inherited from the parent) in a scratch directory. A spawn costs
 * about 150 ms, so independent spawns run concurrently and each group shares one data dir.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import BetterSqlite3 from "better-sqlite3";
import { parse as parseYaml } from "yaml";

// Compiled to dist/test/cli/, so the binary is at dist/src/bin/vqd.js.
const BIN = fileURLToPath(new URL("../../src/bin/vqd.js", import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** One isolated installation: its own data dir, allowed root and working directory. */
interface Home {
  readonly dir: string;
  readonly videos: string;
  readonly data: string;
  readonly env: Record<string, string>;
}

let scratch: string;
let homes = 0;

before(() => {
  assert.ok(fs.existsSync(BIN), `build first: ${BIN} is missing`);
  scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "vqd-cli-")));
});

after(() => {
  fs.rmSync(scratch, { recursive: true, force: true });
});

function newHome(): Home {
  const dir = path.join(scratch, `h${++homes}`);
  const videos = path.join(dir, "videos");
  const data = path.join(dir, "data");
  fs.mkdirSync(videos, { recursive: true });
  return {
    dir,
    videos,
    data,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? dir,
      VQD_DATADIR: data,
      VQD_ALLOWEDROOTS: `[${videos}]`,
    },
  };
}

/** Creates a file under the home's videos folder (parents too) and returns its absolute path. */
function video(home: Home, name: string): string {
  const p = path.join(home.videos, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, "not really a video");
  return p;
}

/** Runs the built CLI; `env` entries are added to the home's environment (undefined removes one). */
function vqd(home: Home, args: readonly string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const merged: Record<string, string> = { ...home.env };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete merged[k];
    else merged[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: home.dir, env: merged, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }));
  });
}

/** Runs and asserts the exit code, showing both streams when it differs. */
async function expectCode(home: Home, args: readonly string[], code: number, env: Record<string, string | undefined> = {}): Promise<Run> {
  const r = await vqd(home, args, env);
  assert.equal(r.code, code, `vqd ${args.join(" ")} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

async function json<T = unknown>(home: Home, args: readonly string[], env: Record<string, string | undefined> = {}): Promise<T> {
  return parseJson<T>(await expectCode(home, args, 0, env), args);
}

function parseJson<T>(r: Run, args: readonly string[]): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch (err) {
    assert.fail(`vqd ${args.join(" ")}: stdout is not JSON (${String(err)})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

interface EnqueueItem {
  input: string;
  id?: string;
  path?: string;
  lane?: string;
  pipeline?: string;
  error?: string;
  problem?: string;
}

interface VideoJson {
  id: string;
  state: string;
  lane: string;
  pipeline: string;
  path: string;
  steps: string[];
  timeline?: { type: string; data: Record<string, unknown>; metadata: Record<string, unknown> }[];
}

const ID = /^[0-9a-z]{20}$/;
/** Rows of a human table (header dropped); the first column of each. */
const tableIds = (stdout: string): string[] =>
  stdout
    .trimEnd()
    .split("\n")
    .slice(1)
    .map((l) => l.split(/\s+/)[0] ?? "");

/** Without a daemon the CLI records straight into the store and says so on stderr. */
const DAEMON_NOTE = /^vqd: the daemon is not running.*$/m;
/** stderr lines other than the daemon note. */
const errorLines = (stderr: string): string[] =>
  stderr
    .split("\n")
    .filter((l) => l !== "" && !DAEMON_NOTE.test(l));

/** Any C0 control other than newline, DEL, or C1: never sent to the terminal in human output. */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

function eventCount(home: Home): number {
  const db = new BetterSqlite3(path.join(home.data, "vqd.db"), { readonly: true, fileMustExist: true });
  try {
    const table = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'").get();
    assert.ok(table, "the events table must still exist");
    return (db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe("vqd enqueue", { concurrency: true }, () => {
  test("good files print one id each; --json gives an array with ids", async () => {
    const h = newHome();
    video(h, "a.mp4");
    video(h, "b.mp4");
    const r = await expectCode(h, ["enqueue", "videos/a.mp4", "videos/b.mp4"], 0);
    assert.deepEqual(errorLines(r.stderr), []);
    assert.match(r.stderr, DAEMON_NOTE);
    assert.match(r.stdout, /^ID\s+LANE\s+PIPELINE\s+PATH/);
    const ids = tableIds(r.stdout);
    assert.equal(ids.length, 2);
    for (const id of ids) assert.match(id, ID);
    assert.ok(r.stdout.includes(path.join(h.videos, "a.mp4")));

    const items = await json<EnqueueItem[]>(h, ["enqueue", "--json", "videos/a.mp4"]);
    assert.equal(items.length, 1);
    assert.match(items[0]?.id ?? "", ID);
    assert.deepEqual({ ...items[0], id: "" }, { input: "videos/a.mp4", id: "", path: path.join(h.videos, "a.mp4"), lane: "normal", pipeline: "default" });

    const listed = await json<VideoJson[]>(h, ["list", "--json"]);
    assert.deepEqual(listed.map((v) => v.id).sort(), [...ids, items[0]?.id].sort());
  });

  test("mixed good and bad paths: good ones enqueued, each bad one named on stderr, exit 1", async () => {
    const h = newHome();
    video(h, "good1.mp4");
    video(h, "good2.mp4");
    fs.mkdirSync(path.join(h.dir, "elsewhere"));
    fs.writeFileSync(path.join(h.dir, "elsewhere", "x.mp4"), "x");
    const bad = ["videos/missing.mp4", "elsewhere/x.mp4", "videos", "/etc/passwd"];
    const r = await expectCode(h, ["enqueue", "videos/good1.mp4", ...bad, "videos/good2.mp4"], 1);
    assert.equal(tableIds(r.stdout).length, 2);
    const lines = errorLines(r.stderr);
    assert.equal(lines.length, bad.length, r.stderr);
    bad.forEach((input, i) => assert.ok(lines[i]?.includes(JSON.stringify(input)), `line ${i} should name ${input}: ${lines[i]}`));
    assert.match(lines[0] ?? "", /no such file/);
    assert.match(lines[1] ?? "", /outside the allowed roots/);
    assert.match(lines[2] ?? "", /not a regular file.*directory/);
    assert.match(lines[3] ?? "", /outside the allowed roots/);

    const listed = await json<VideoJson[]>(h, ["list", "--json"]);
    assert.deepEqual(listed.map((v) => path.basename(v.path)).sort(), ["good1.mp4", "good2.mp4"]);

    // --json reports the failures in their own slots (and still exits 1).
    const jsonArgs = ["enqueue", "--json", "videos/good1.mp4", "videos/missing.mp4"];
    const items = parseJson<EnqueueItem[]>(await expectCode(h, jsonArgs, 1), jsonArgs);
    assert.match(items[0]?.id ?? "", ID);
    assert.equal(items[1]?.problem, "missing");
    assert.equal(items[1]?.input, "videos/missing.mp4");
  });

  test("the same path twice is enqueued twice with two distinct ids", async () => {
    const h = newHome();
    video(h, "dup.mp4");
    const items = await json<EnqueueItem[]>(h, ["enqueue", "--json", "videos/dup.mp4", "videos/dup.mp4", "./videos/dup.mp4"]);
    const ids = items.map((i) => i.id);
    assert.equal(new Set(ids).size, 3, JSON.stringify(items));
    const listed = await json<VideoJson[]>(h, ["list", "--json"]);
    assert.deepEqual(listed.map((v) => v.id).sort(), [...ids].sort());
  });

  test("--priority, --pipeline, unknown pipeline, bad priority, no allowedRoots", async () => {
    const h = newHome();
    video(h, "p.mp4");
    const [item] = await json<EnqueueItem[]>(h, ["enqueue", "--json", "--priority", "high", "--pipeline", "noop", "videos/p.mp4"]);
    assert.ok(item?.id);
    const [shown, unknownPipeline, badPriority, noRoots] = await Promise.all([
      json<VideoJson>(h, ["show", "--json", item.id]),
      expectCode(h, ["enqueue", "--pipeline", "nope", "videos/p.mp4"], 1),
      expectCode(h, ["enqueue", "--priority", "urgent", "videos/p.mp4"], 2),
      expectCode(h, ["enqueue", "videos/p.mp4"], 1, { VQD_ALLOWEDROOTS: "[]" }),
    ]);
    assert.equal(shown.lane, "high");
    assert.equal(shown.pipeline, "noop");
    assert.deepEqual(shown.steps, ["noop"]);
    assert.match(unknownPipeline.stderr, /unknown pipeline "nope" \(known: default, noop\)/);
    assert.match(badPriority.stderr, /--priority.*urgent.*high, normal, low/);
    assert.match(noRoots.stderr, /no allowedRoots are configured/);
    // None of the refused requests recorded anything.
    assert.equal((await json<VideoJson[]>(h, ["list", "--json"])).length, 1);
    assert.equal(eventCount(h), 1);
  });

  test("a file name starting with a dash is accepted after --", async () => {
    const h = newHome();
    const p = video(h, "--json.mp4");
    const r = await expectCode(h, ["enqueue", "--", "videos/--json.mp4"], 0);
    assert.ok(r.stdout.includes(p), r.stdout);
  });
});

describe("vqd list, show, cancel, retry, priority, status, projections", () => {
  let h: Home;
  let ids: string[];

  before(async () => {
    h = newHome();
    for (const n of ["one.mp4", "two.mp4", "three.mp4"]) video(h, n);
    const items = await json<EnqueueItem[]>(h, ["enqueue", "--json", "videos/one.mp4", "videos/two.mp4", "videos/three.mp4"]);
    ids = items.map((i) => i.id ?? "");
  });

  test("list: table, --json, --state, --limit, --after; bad --limit and --state exit 2", async () => {
    const [table, all, queued, cancelled, limited, after, zero, badState] = await Promise.all([
      expectCode(h, ["list"], 0),
      json<VideoJson[]>(h, ["list", "--json"]),
      json<VideoJson[]>(h, ["list", "--json", "--state", "queued"]),
      json<VideoJson[]>(h, ["list", "--json", "--state", "cancelled"]),
      json<VideoJson[]>(h, ["list", "--json", "--limit", "2"]),
      json<VideoJson[]>(h, ["list", "--json", "--after", ids[0] ?? ""]),
      expectCode(h, ["list", "--limit", "0"], 2),
      expectCode(h, ["list", "--state", "sleeping"], 2),
    ]);
    assert.match(table.stdout, /^ID\s+STATE\s+LANE\s+PIPELINE\s+ATTEMPTS\s+STEP\s+UPDATED\s+PATH\n/);
    assert.deepEqual(tableIds(table.stdout), ids);
    assert.match(table.stdout, /queued\s+normal\s+default\s+0\/5/);
    assert.deepEqual(all.map((v) => v.id), ids);
    assert.equal(queued.length, 3);
    assert.equal(cancelled.length, 0);
    assert.deepEqual(limited.map((v) => v.id), ids.slice(0, 2));
    assert.deepEqual(after.map((v) => v.id), ids.slice(1));
    assert.match(zero.stderr, /--limit.*1 to 10000/);
    assert.match(badState.stderr, /--state/);
  });

  test("show: state and timeline; --json; an unknown id exits 1", async () => {
    const id = ids[0] ?? "";
    const [human, asJson, missing] = await Promise.all([
      expectCode(h, ["show", id], 0),
      json<VideoJson>(h, ["show", "--json", id]),
      expectCode(h, ["show", "01nosuchvideo0000000"], 1),
    ]);
    assert.match(human.stdout, new RegExp(`^id:\\s+${id}$`, "m"));
    assert.match(human.stdout, /^state:\s+queued$/m);
    assert.match(human.stdout, /^pipeline:\s+default \(probe -> thumbnail -> transcode\)$/m);
    assert.match(human.stdout, /VideoEnqueued\s+lane normal, pipeline default, via cli/);
    assert.equal(asJson.id, id);
    assert.equal(asJson.state, "queued");
    assert.equal(asJson.path, path.join(h.videos, "one.mp4"));
    assert.deepEqual(asJson.timeline?.map((e) => e.type), ["VideoEnqueued"]);
    assert.equal(asJson.timeline?.[0]?.metadata.source, "cli");
    assert.match(missing.stderr, /no video with id 01nosuchvideo0000000/);
  });

  test("cancel, cancel again (exit 1), retry of a queued video (exit 1), priority", async () => {
    const [c, p] = [ids[1] ?? "", ids[2] ?? ""];
    const [cancelled, retried, moved] = await Promise.all([
      expectCode(h, ["cancel", c], 0),
      expectCode(h, ["retry", p], 1),
      expectCode(h, ["priority", p, "low"], 0),
    ]);
    assert.equal(cancelled.stdout, `${c}: cancelled, lane normal\n`);
    assert.match(retried.stderr, new RegExp(`cannot retry video ${p}: it is queued`));
    assert.equal(moved.stdout, `${p}: queued, lane low\n`);

    const [again, sameLane, badLane, shown, cancelledList] = await Promise.all([
      expectCode(h, ["cancel", c], 1),
      expectCode(h, ["priority", p, "low"], 1),
      expectCode(h, ["priority", p, "urgent"], 2),
      json<VideoJson>(h, ["show", "--json", p]),
      json<VideoJson[]>(h, ["list", "--json", "--state", "cancelled"]),
    ]);
    assert.match(again.stderr, /it is cancelled/);
    assert.match(sameLane.stderr, /already in lane low/);
    assert.match(badLane.stderr, /urgent/);
    assert.equal(shown.lane, "low");
    assert.deepEqual(shown.timeline?.map((e) => e.type), ["VideoEnqueued", "PriorityChanged"]);
    assert.deepEqual(cancelledList.map((v) => v.id), [c]);
  });

  test("status counts (human and --json)", async () => {
    const [human, status] = await Promise.all([
      expectCode(h, ["status"], 0),
      json<{ daemon: boolean; depth: Record<string, number>; states: Record<string, number>; total: number; database: { ok: boolean; file?: string } }>(h, ["status", "--json"]),
    ]);
    assert.equal(status.daemon, false);
    assert.deepEqual(status.database, { ok: true, file: path.join(h.data, "vqd.db") });
    assert.equal(status.total, 3);
    assert.equal(status.states.queued, 2);
    assert.equal(status.states.cancelled, 1);
    assert.deepEqual(status.depth, { high: 0, normal: 1, low: 1 });
    assert.match(human.stdout, /^daemon:\s+not running/m);
    assert.match(human.stdout, /^depth:\s+high 0, normal 1, low 1$/m);
    assert.match(human.stdout, /^cancelled:\s+1$/m);
    assert.match(human.stdout, /^total:\s+3$/m);
  });

  test("projections rebuild prints counts and changes nothing visible", async () => {
    const beforeList = (await expectCode(h, ["list", "--json"], 0)).stdout;
    const r = await expectCode(h, ["projections", "rebuild"], 0);
    // 3 enqueued + 1 cancelled + 1 priority change.
    assert.match(r.stdout, /^rebuilt 3 videos from 5 events in \d+ ms$/m);
    const afterList = await expectCode(h, ["list", "--json"], 0);
    assert.equal(afterList.stdout, beforeList);
    assert.equal(eventCount(h), 5);
  });
});

describe("vqd config", { concurrency: true }, () => {
  let h: Home;
  before(() => {
    h = newHome();
  });

  test("config print shows the effective config with env overrides; secrets are redacted", async () => {
    const secretEnv = {
      VQD_WORKERS__COUNT: "7",
      VQD_NATS__USER: "alice",
      VQD_NATS__PASSWORD: "hunter2-secret",
      VQD_NATS__SERVERS: "nats://bob:url-secret@nats.example:4222",
    };
    const [yaml, asJson] = await Promise.all([expectCode(h, ["config", "print"], 0, secretEnv), expectCode(h, ["config", "print", "--json"], 0, secretEnv)]);
    for (const r of [yaml, asJson]) {
      assert.ok(!r.stdout.includes("hunter2"), "the NATS password leaked");
      assert.ok(!r.stdout.includes("url-secret"), "the password in a server URL leaked");
      assert.ok(!r.stderr.includes("hunter2"));
      assert.ok(r.stdout.includes("[redacted]"));
    }
    const parsed = parseYaml(yaml.stdout) as { workers: { count: number }; allowedRoots: string[]; dataDir: string; nats: { user: string; password: string; servers: string[] } };
    assert.equal(parsed.workers.count, 7);
    assert.deepEqual(parsed.allowedRoots, [h.videos]);
    assert.equal(parsed.dataDir, h.data);
    assert.equal(parsed.nats.user, "alice");
    assert.equal(parsed.nats.password, "[redacted]");
    assert.deepEqual(parsed.nats.servers, ["nats://bob:[redacted]@nats.example:4222"]);
    assert.deepEqual(JSON.parse(asJson.stdout), parsed);
  });

  test("config errors exit 78 and name the key (env, file, VQD_CONFIG), for any command", async () => {
    const unknownKey = path.join(h.dir, "unknown-key.yaml");
    fs.writeFileSync(unknownKey, "workers:\n  count: 2\n  countt: 3\n");
    const malformed = path.join(h.dir, "malformed.yaml");
    fs.writeFileSync(malformed, "workers: [\n  count: 2\n");
    const good = path.join(h.dir, "good.yaml");
    fs.writeFileSync(good, "workers:\n  count: 5\n");
    const cases: { args: string[]; env?: Record<string, string>; expect: RegExp[] }[] = [
      { args: ["config", "print"], env: { VQD_WORKERS__COUNTT: "3" }, expect: [/VQD_WORKERS__COUNTT/, /workers\.countt/, /did you mean VQD_WORKERS__COUNT\?/] },
      { args: ["config", "print"], env: { VQD_WORKERS__COUNT: "many" }, expect: [/workers\.count: must be an integer/, /"many"/, /VQD_WORKERS__COUNT/] },
      { args: ["config", "print"], env: { VQD_WORKERS__COUNT: "65" }, expect: [/workers\.count: must be an integer between 1 and 64 \(got 65\)/] },
      { args: ["config", "print"], env: { VQD_NATS__PASSWORD: "hunter2-secret" }, expect: [/nats\.user/] },
      { args: ["--config", unknownKey, "config", "print"], expect: [/workers\.countt: unknown key \(did you mean "count"\?\)/, new RegExp(`${unknownKey}:3`)] },
      { args: ["--config", path.join(h.dir, "missing.yaml"), "config", "print"], expect: [/cannot read the config file: no such file/, /missing\.yaml/] },
      { args: ["--config", malformed, "config", "print"], expect: [/malformed YAML at line \d+/, /malformed\.yaml/] },
      { args: ["config", "print"], env: { VQD_CONFIG: path.join(h.dir, "gone.yaml") }, expect: [/named by VQD_CONFIG/] },
      { args: ["list"], env: { VQD_WORKERS__COUNT: "0" }, expect: [/workers\.count/] },
    ];
    const runs = await Promise.all(cases.map((c) => vqd(h, c.args, c.env)));
    runs.forEach((r, i) => {
      const c = cases[i];
      assert.ok(c);
      const label = `case ${i} (${JSON.stringify(c.env ?? {})} ${c.args.join(" ")})`;
      assert.equal(r.code, 78, `${label}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, /^vqd: invalid config: /, label);
      for (const re of c.expect) assert.match(r.stderr, re, label);
      assert.ok(!r.stderr.includes("hunter2"), `${label}: a secret reached stderr`);
      assert.equal(r.stdout, "", label);
    });
    // The env overrides the file; the file overrides the defaults.
    const layered = parseYaml((await expectCode(h, ["--config", good, "config", "print"], 0, { VQD_WORKERS__MAX_ATTEMPTS: "9" })).stdout) as {
      workers: { count: number; maxAttempts: number };
    };
    assert.deepEqual([layered.workers.count, layered.workers.maxAttempts], [5, 9]);
  });
});

describe("vqd usage and help", () => {
  test("--help of every command exits 0; unknown commands and bad usage exit 2", async () => {
    const h = newHome();
    const top = await expectCode(h, ["--help"], 0);
    assert.match(top.stdout, /^Usage: vqd /);
    // Every command the top-level help lists (so a new command is covered too), plus the subcommands.
    const listed = [...(top.stdout.split("Commands:")[1] ?? "").matchAll(/^ {2}([a-z-]+)/gm)].map((m) => m[1] ?? "").filter((c) => c !== "help");
    for (const c of ["enqueue", "list", "show", "status", "cancel", "retry", "priority", "projections", "config"]) assert.ok(listed.includes(c), `${c} missing from --help`);
    const commands = [...listed, "projections rebuild", "config print"];
    const [helpCmd, ...helps] = await Promise.all([
      expectCode(h, ["help"], 0),
      ...commands.map((c) => expectCode(h, [...c.split(" "), "--help"], 0)),
    ]);
    assert.match(helpCmd?.stdout ?? "", /^Usage: vqd /);
    commands.forEach((c, i) => assert.match(helps[i]?.stdout ?? "", new RegExp(`^Usage: vqd ${c} `), c));

    const [unknown, none, noSub, badOption, noId] = await Promise.all([
      expectCode(h, ["frobnicate"], 2),
      expectCode(h, [], 2),
      expectCode(h, ["config"], 2),
      expectCode(h, ["list", "--bogus"], 2),
      expectCode(h, ["show"], 2),
    ]);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
    assert.match(none.stderr, /Usage: vqd/);
    assert.match(noSub.stderr, /Usage: vqd config/);
    assert.match(badOption.stderr, /unknown option '--bogus'/);
    assert.match(noId.stderr, /missing required argument 'id'/);
    // Usage errors never touch the database.
    assert.ok(!fs.existsSync(h.data));
  });
});

describe("hostile file names", { concurrency: true }, () => {
  test("quotes, SQL, shell metacharacters, unicode and a > 1,000-character path are stored and shown verbatim", async () => {
    const h = newHome();
    const deep = Array.from({ length: 5 }, (_, i) => `${i}${"d".repeat(199)}`);
    const names = [
      `it's a "quoted" name.mp4`,
      `'; DROP TABLE events; --.mp4`,
      `Robert'); DROP TABLE videos;--.mp4`,
      "$(touch pwned) `touch pwned2` & | ; > <.mp4",
      "🎬 film 🍿.mp4",
      "סרט \u202Egpj.mp4",
      "cafe\u0301 vs caf\u00e9.mp4",
      "%s %n %x {0} ${HOME}.mp4",
      "a".repeat(246) + ".mp4",
      path.join(...deep, "v".repeat(200) + ".mp4"),
      // The list's PATH column is cut at 80 characters: put an emoji astride the cut.
      "a".repeat(78 - h.videos.length - 1) + "🎬".repeat(4) + ".mp4",
    ];
    const paths = names.map((n) => video(h, n));
    assert.ok(paths.some((p) => p.length > 1000));
    const items = await json<EnqueueItem[]>(h, ["enqueue", "--json", ...paths]);
    assert.deepEqual(
      items.map((i) => i.path),
      paths,
    );
    // show --json for the nastiest few (a spawn each), list --json for all of them.
    const picks = [0, 1, 5, 9];
    const [listed, ...shown] = await Promise.all([
      json<VideoJson[]>(h, ["list", "--json"]),
      ...picks.map((i) => json<VideoJson>(h, ["show", "--json", items[i]?.id ?? ""])),
    ]);
    assert.deepEqual(
      listed.map((v) => v.path),
      paths,
    );
    assert.deepEqual(
      shown.map((v) => v.path),
      picks.map((i) => paths[i]),
    );
    assert.deepEqual(
      shown.map((v) => v.timeline?.[0]?.data.path),
      picks.map((i) => paths[i]),
    );
    // Relative input works too, and the human list is still one line per video.
    const rel = await expectCode(h, ["enqueue", path.relative(h.dir, paths[1] ?? "")], 0);
    assert.ok(rel.stdout.includes(paths[1] ?? ""));
    const list = await expectCode(h, ["list"], 0);
    assert.equal(list.stdout.trimEnd().split("\n").length, names.length + 2);
    assert.ok(!list.stdout.includes("\uFFFD"), "a long path was cut inside a character");

    assert.equal(eventCount(h), names.length + 1);
    assert.ok(!fs.existsSync(path.join(h.dir, "pwned")) && !fs.existsSync(path.join(h.dir, "pwned2")), "a shell ran");
  });

  test("newline, ESC and C1 characters are escaped in human output and verbatim in --json", async () => {
    const h = newHome();
    const names = ["line\nbreak.mp4", "esc \u001b[31mred\u001b[0m.mp4", "bell\u0007 del\u007f csi\u009b2J.mp4"];
    const paths = names.map((n) => video(h, n));
    const enq = await expectCode(h, ["enqueue", ...paths], 0);
    const ids = tableIds(enq.stdout);
    assert.equal(ids.length, names.length, enq.stdout);
    const [list, listJson, show, showJson, missing] = await Promise.all([
      expectCode(h, ["list"], 0),
      json<VideoJson[]>(h, ["list", "--json"]),
      expectCode(h, ["show", ids[1] ?? ""], 0),
      json<VideoJson>(h, ["show", "--json", ids[0] ?? ""]),
      expectCode(h, ["enqueue", path.join(h.videos, "gone\u001b[2J\n.mp4")], 1),
    ]);
    for (const [what, out] of [
      ["enqueue", enq.stdout],
      ["list", list.stdout],
      ["show", show.stdout],
      ["stderr", missing.stderr],
    ] as const) {
      assert.ok(!RAW_CONTROL.test(out), `${what} printed a raw control character: ${JSON.stringify(out)}`);
    }
    for (const out of [enq.stdout, list.stdout]) {
      assert.equal(out.trimEnd().split("\n").length, names.length + 1, "a newline in a name split a row");
      assert.ok(out.includes("line\\x0abreak.mp4"));
      assert.ok(out.includes("esc \\x1b[31mred\\x1b[0m.mp4"));
      assert.ok(out.includes("bell\\x07 del\\x7f csi\\x9b2J.mp4"));
    }
    assert.match(show.stdout, /^path:\s+.*esc \\x1b\[31mred\\x1b\[0m\.mp4$/m);
    assert.ok(missing.stderr.includes("gone\\u001b[2J\\n.mp4"), missing.stderr);
    assert.deepEqual(
      listJson.map((v) => v.path),
      paths,
    );
    assert.equal(showJson.path, paths[0]);
  });
});
