/**
 * Hostile input through the NATS API (`<prefix>.api.enqueue`, request/reply), against a real
 * daemon: file names and metadata built to break SQL, shells or terminals are stored verbatim and
 * run; names the file system cannot hold (10 KB, NUL) and paths that escape allowedRoots through
 * `..` or a symlink are refused item by item; a payload over api.maxPayloadBytes is refused
 * whole. Nothing is injected: the database keeps its tables and passes integrity_check.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, realpath, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import BetterSqlite3 from "better-sqlite3";
import type { EnqueueResultJson } from "../../src/api/index.js";
import { subjects as makeSubjects, type Subjects } from "../../src/bus/index.js";
import { Daemon } from "../../src/daemon/index.js";
import { silentLogger } from "../../src/shared/logger.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { makeVqdEnv, type VqdEnv } from "../support/vqd-env.js";

const MAX_PAYLOAD = 64 * 1024;

type Reply<T> = { ok: true; result: T } | { ok: false; error: { code: string; message: string } };

describe("hostile input through the API", () => {
  let srv: TestNatsServer;
  let env: VqdEnv;
  let daemon: Daemon;
  let nc: NatsConnection;
  let subj: Subjects;

  before(async () => {
    srv = await startNatsServer();
    env = await makeVqdEnv({
      natsUrl: srv.url,
      extra: {
        VQD_TELEMETRY__ENABLED: "false",
        VQD_DEFAULTPIPELINE: "noop",
        VQD_WORKERS__SHUTDOWNDEADLINEMS: "500",
        VQD_API__MAXPAYLOADBYTES: String(MAX_PAYLOAD),
        VQD_LOGGING__LEVEL: "silent",
      },
    });
    daemon = await Daemon.start({ config: env.config(), logger: silentLogger });
    subj = makeSubjects(env.config().nats.subjectPrefix);
    nc = await connect({ servers: srv.url, name: "vqd-security-test" });
  });
  after(async () => {
    await daemon?.stop();
    await nc?.close();
    await env?.cleanup();
    await srv?.stop();
  });

  const request = async <T>(verb: string, body: unknown): Promise<Reply<T>> => {
    const data = new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body));
    const msg = await nc.request(subj.api(verb), data, { timeout: 10_000 });
    return JSON.parse(new TextDecoder().decode(msg.data)) as Reply<T>;
  };
  const enqueue = async (body: Record<string, unknown>): Promise<EnqueueResultJson[]> => {
    const r = await request<EnqueueResultJson[]>("enqueue", body);
    assert.equal(r.ok, true, JSON.stringify(r).slice(0, 500));
    return (r as { result: EnqueueResultJson[] }).result;
  };
  const accepted = (r: EnqueueResultJson | undefined): string => {
    assert.ok(r && "id" in r, `refused: ${JSON.stringify(r).slice(0, 300)}`);
    return r.id;
  };
  const refusal = (r: EnqueueResultJson | undefined): string => {
    assert.ok(r && "error" in r, `accepted: ${JSON.stringify(r).slice(0, 300)}`);
    return r.error;
  };
  const waitCompleted = async (ids: readonly string[]): Promise<void> => {
    const deadline = Date.now() + 15_000;
    while (!ids.every((id) => daemon.store.get(id)?.state === "completed")) {
      if (Date.now() > deadline) throw new Error(`not completed: ${ids.map((id) => `${id}=${daemon.store.get(id)?.state}`).join(", ")}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const inspectDb = <T>(fn: (db: BetterSqlite3.Database) => T): T => {
    const db = new BetterSqlite3(env.config().database.file, { readonly: true, fileMustExist: true });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };

  it("stores hostile file names and metadata verbatim, runs them, and injects nothing", async () => {
    const names = [
      `it's a "quoted" name.mp4`,
      `'; DROP TABLE events; --.mp4`,
      `Robert'); DELETE FROM videos; --.mp4`,
      "$(touch PWNED) `touch PWNED`; rm -rf PWNED & echo.mp4",
      "-rf --help.mp4",
      "line\nbreak\rand\ttab.mp4",
      "back\\slash %s%n %x {input}.mp4",
      "日本語 🎬 e\u0301 \u202eRTL\u202c.mp4",
      "\u001b[31mred\u001b[0m.mp4",
      `${"n".repeat(251)}.mp4`, // 255 bytes: the longest name a file system takes
    ];
    const files = names.map((n) => join(env.videosDir, n));
    for (const f of files) await writeFile(f, "not really a video\n");
    const metadata: Record<string, string> = {
      sql: "'; DROP TABLE events; --",
      "key'); DELETE FROM videos; --": "value",
      nul: "a\u0000b\u0000",
      big: "x".repeat(10 * 1024),
      unicode: "日本語 🎬 e\u0301 \u202eRTL\u202c",
      quotes: `"\\'\n\t`,
      shell: "$(id) `id` | sh",
    };
    const tooLong = join(env.videosDir, `${"L".repeat(10 * 1024)}.mp4`);
    const withNul = join(env.videosDir, "nul\u0000byte.mp4");
    const results = await enqueue({ paths: [...files, tooLong, withNul], metadata });
    assert.equal(results.length, files.length + 2);
    const ids = files.map((_, i) => accepted(results[i]));
    // The file system cannot hold these two: each is refused in its own slot, with a reason.
    assert.match(refusal(results[files.length]), /ENAMETOOLONG|name too long|cannot resolve/i);
    assert.match(refusal(results[files.length + 1]), /NUL byte/);

    await waitCompleted(ids);
    for (const [i, id] of ids.entries()) {
      const video = daemon.store.get(id);
      assert.equal(video?.path, files[i], "the path is stored as given, byte for byte");
      assert.deepEqual(video?.metadata, metadata);
      assert.equal(video?.state, "completed");
    }
    // Read back through the API too.
    const shown = await request<{ path: string; metadata: Record<string, string> }>("show", { id: ids[1] });
    assert.ok(shown.ok);
    assert.equal(shown.result.path, files[1]);
    assert.deepEqual(shown.result.metadata, metadata);

    // Nothing ran through a shell, and the tables the SQL text names are intact.
    for (const dir of [env.root, env.videosDir, env.dataDir, process.cwd()]) assert.equal(existsSync(join(dir, "PWNED")), false, `PWNED in ${dir}`);
    inspectDb((db) => {
      assert.deepEqual(db.pragma("integrity_check"), [{ integrity_check: "ok" }]);
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
      for (const t of ["events", "outbox", "videos"]) assert.ok(tables.includes(t), `table ${t} is gone: ${tables.join(", ")}`);
      const stored = db.prepare("SELECT path FROM videos WHERE id = ?").get(ids[1]) as { path: string };
      assert.equal(stored.path, files[1]);
      const events = db.prepare("SELECT count(*) AS n FROM events WHERE stream_id = ?").get(ids[1]) as { n: number };
      assert.ok(events.n >= 3, `events of ${ids[1]}: ${events.n}`);
    });
  });

  it("refuses paths that escape allowedRoots through .. or a symlink, and records nothing for them", async () => {
    const outside = join(env.root, "outside.mp4");
    await writeFile(outside, "secret outside the root\n");
    const linkToFile = join(env.videosDir, "escape.mp4");
    await symlink(outside, linkToFile);
    const linkToDir = join(env.videosDir, "escape-dir");
    await symlink(env.root, linkToDir);
    await mkdir(join(env.videosDir, "sub"), { recursive: true });
    const inside = join(env.videosDir, "sub", "inside.mp4");
    await writeFile(inside, "inside\n");
    const linkInside = join(env.videosDir, "alias.mp4");
    await symlink(inside, linkInside);
    const before = (await daemon.store.counts()).total;

    const escapes = [
      join(env.videosDir, "..", "outside.mp4"),
      `${env.videosDir}/sub/../../outside.mp4`,
      linkToFile,
      join(linkToDir, "outside.mp4"),
      "/etc/passwd",
    ];
    const results = await enqueue({ paths: [...escapes, linkInside] });
    for (const [i, p] of escapes.entries()) assert.match(refusal(results[i]), /outside the allowed roots/, p);
    // A relative path resolved against the caller's cwd escapes the same way.
    const relative = await enqueue({ paths: ["../outside.mp4", "sub/inside.mp4"], cwd: env.videosDir });
    assert.match(refusal(relative[0]), /outside the allowed roots/);
    accepted(relative[1]);
    // A symlink that stays inside a root is fine; the real path is what gets recorded.
    const aliasId = accepted(results[escapes.length]);
    assert.equal(daemon.store.get(aliasId)?.path, await realpath(inside));
    assert.equal((await daemon.store.counts()).total, before + 2, "only the two good paths were recorded");
  });

  it("refuses a payload over api.maxPayloadBytes whole, and records nothing", async () => {
    const before = (await daemon.store.counts()).total;
    const [file] = await env.videos(1);
    const body = JSON.stringify({ paths: [file], metadata: { pad: "p".repeat(MAX_PAYLOAD) } });
    assert.ok(body.length > MAX_PAYLOAD);
    const r = await request("enqueue", body);
    assert.equal(r.ok, false);
    assert.equal((r as { error: { code: string } }).error.code, "too_large");
    assert.match((r as { error: { message: string } }).error.message, new RegExp(`exceeds the limit of ${MAX_PAYLOAD} bytes`));
    // Just under the limit is accepted.
    const fits = JSON.stringify({ paths: [file], metadata: { pad: "p".repeat(MAX_PAYLOAD - 1000) } });
    assert.ok(fits.length <= MAX_PAYLOAD);
    const ok = await request<EnqueueResultJson[]>("enqueue", fits);
    assert.equal(ok.ok, true, JSON.stringify(ok).slice(0, 300));
    assert.equal((await daemon.store.counts()).total, before + 1);
  });
});
