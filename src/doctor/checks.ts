/**
 * The checks of `vqd doctor`. Each one looks at one thing the daemon needs and returns a result
 * (ok / warn / fail) with a fix hint. None of them changes anything: the database is opened
 * read-only, the data dir is probed with a temporary file that is removed at once, NATS is only
 * asked questions. Programs are run without a shell (spawn with an argument list).
 */
import { spawn } from "node:child_process";
import { constants, type Stats } from "node:fs";
import { access, mkdtemp, rm, stat, statfs } from "node:fs/promises";
import { dirname, join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import BetterSqlite3 from "better-sqlite3";
import { connectNats, isNatsAuthError } from "../bus/index.js";
import type { Config } from "../config/index.js";
import { connectOptions, embeddedRuntimeFile, locateNats } from "../daemon/nats-setup.js";
import { fail, ok, warn, type CheckResult } from "./report.js";

export const MIN_NODE = "20.6.0";
/** The nats-server line vqd is built and tested against (Debian 12's package). */
export const MIN_NATS_SERVER = "2.9.0";
export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

export interface SpaceThresholds {
  /** Below this many free bytes: warn. Default 1 GiB. */
  readonly warnBelow: number;
  /** Below this many free bytes: fail. Default 100 MiB. */
  readonly failBelow: number;
}

export const DEFAULT_SPACE: SpaceThresholds = { warnBelow: GiB, failBelow: 100 * MiB };

// ---------------------------------------------------------------------------------------------
// Programs
// ---------------------------------------------------------------------------------------------

export function checkNode(version: string = process.versions.node): CheckResult {
  if (compareVersions(version, MIN_NODE) >= 0) return ok("node", `v${version} (>= ${MIN_NODE}) at ${process.execPath}`);
  return fail("node", `v${version} is too old (vqd needs >= ${MIN_NODE})`, "install Node.js 20.6 or newer (e.g. from NodeSource) and make it the `node` the unit runs");
}

/** The embedded server's binary; only needed when nats.servers is empty. */
export async function checkNatsServer(config: Config): Promise<CheckResult> {
  const name = "nats-server";
  if (config.nats.servers.length > 0) return ok(name, `not needed: external NATS (nats.servers = ${config.nats.servers.join(", ")})`);
  const binary = config.nats.embedded.binary;
  const r = await runVersion(binary, ["--version"]);
  const hint = "apt-get install nats-server, or set nats.embedded.binary to its path, or set nats.servers to use an external NATS";
  if (!r.ok) return fail(name, r.error, hint);
  const version = /v?(\d+\.\d+\.\d+)/.exec(r.output)?.[1];
  if (!version) return warn(name, `${binary} answered --version with ${JSON.stringify(r.output.slice(0, 80))}`, "check that nats.embedded.binary is nats-server");
  if (compareVersions(version, MIN_NATS_SERVER) < 0) {
    return warn(name, `v${version} at ${r.path} is older than ${MIN_NATS_SERVER}, which vqd is tested with`, "upgrade nats-server");
  }
  return ok(name, `v${version} (${r.path}), embedded mode`);
}

/** Step kinds that run ffmpeg or ffprobe. */
const FFMPEG_STEPS = new Set(["thumbnail", "transcode"]);
const FFPROBE_STEPS = new Set(["probe"]);

/** ffmpeg or ffprobe: a failure when a configured pipeline uses it, else a warning. */
export async function checkMediaTool(config: Config, tool: "ffmpeg" | "ffprobe"): Promise<CheckResult> {
  const binary = config.transcode[tool];
  const kinds = tool === "ffmpeg" ? FFMPEG_STEPS : FFPROBE_STEPS;
  const users = Object.entries(config.pipelines)
    .filter(([, p]) => p.steps.some((s) => kinds.has(s.step)))
    .map(([name]) => name);
  const r = await runVersion(binary, ["-version"]);
  if (!r.ok) {
    const hint = `apt-get install ffmpeg (it provides ffmpeg and ffprobe), or set transcode.${tool} to its path`;
    if (users.length === 0) return warn(tool, `${r.error}; no configured pipeline uses it`, hint);
    return fail(tool, `${r.error}; needed by pipeline${users.length > 1 ? "s" : ""} ${users.join(", ")}`, hint);
  }
  const version = new RegExp(`^${tool} version (\\S+)`).exec(r.output)?.[1] ?? r.output.split("\n")[0]?.slice(0, 60) ?? "?";
  return ok(tool, `${version} (${r.path})`);
}

/** systemd-notify sends READY=1/WATCHDOG=1 for the Type=notify units (src/daemon/systemd-notify.ts). */
export async function checkSystemdNotify(): Promise<CheckResult> {
  const r = await runVersion("systemd-notify", ["--version"]);
  if (!r.ok) {
    return warn("systemd-notify", `${r.error}; the Type=notify units (systemd/vqd.service) need it to report readiness`, "apt-get install systemd, or run vqd without those units");
  }
  const version = /^systemd (\d+)/.exec(r.output)?.[1];
  return ok("systemd-notify", `${version ? `systemd ${version}` : "present"} (${r.path})`);
}

/** The oldest python3 the spawn helper runs on (os.posix_spawn with setsid). */
export const MIN_PYTHON = "3.9.0";

/** python3 for the spawn helper (src/pipeline/spawner.ts); without it programs are started by forking the daemon. */
export async function checkSpawnHelper(config: Config): Promise<CheckResult> {
  const name = "spawn helper";
  if (!config.workers.spawnHelper) return ok(name, "off (workers.spawnHelper: false): step programs are started by forking the daemon");
  const hint = `apt-get install python3 (${MIN_PYTHON} or newer), or set workers.spawnHelper: false`;
  const r = await runVersion("python3", ["--version"]);
  if (!r.ok) return warn(name, `${r.error}; step programs will be started by forking the daemon, ~3 ms more CPU each`, hint);
  const version = /Python (\d+\.\d+\.\d+)/.exec(r.output)?.[1];
  if (!version || compareVersions(version, MIN_PYTHON) < 0) {
    return warn(name, `${r.path} is ${version ? `Python ${version}` : JSON.stringify(r.output.slice(0, 60))}, older than ${MIN_PYTHON}: the helper will fail and the daemon falls back to forking`, hint);
  }
  return ok(name, `Python ${version} (${r.path}): step programs are started with posix_spawn`);
}

// ---------------------------------------------------------------------------------------------
// NATS
// ---------------------------------------------------------------------------------------------

/** Reachability (with the configured credentials and TLS) and JetStream: two results. */
export async function checkNats(config: Config): Promise<CheckResult[]> {
  const embedded = config.nats.servers.length === 0;
  const servers = await locateNats(config);
  if (!servers) {
    return [
      warn("nats", `daemon not running: the embedded nats-server starts with \`vqd start\` (no live ${embeddedRuntimeFile(config)})`, "systemctl start vqd (or `vqd start`), then run vqd doctor again"),
      warn("jetstream", "not checked: NATS is not running"),
    ];
  }
  let nc: NatsConnection;
  try {
    nc = await connectNats({ ...connectOptions(config, servers, `vqd-doctor:${process.pid}`), timeoutMs: Math.min(config.nats.connectTimeoutMs, 5000) });
  } catch (err) {
    const message = (err as Error).message;
    const cause = (err as { cause?: unknown }).cause;
    const why = cause instanceof Error && !message.includes(cause.message) ? `${message} (${cause.message})` : message;
    let result: CheckResult;
    if (isNatsAuthError(err)) {
      result = fail("nats", why, "check nats.user + nats.password(File), nats.token(File), nats.credsFile or nats.nkeySeedFile against the server's authorization");
    } else if (/certificate|self.signed|tls|ssl/i.test(why)) {
      result = fail("nats", why, "set nats.tls.caFile to the CA that signed the server's certificate (and nats.tls.certFile/keyFile if it wants client certificates)");
    } else if (embedded) {
      result = warn("nats", `daemon not running? the embedded server at ${servers.join(", ")} does not answer: ${why}`, "systemctl restart vqd");
    } else {
      result = fail("nats", why, "start the NATS servers or fix nats.servers; check firewalls between this host and them");
    }
    return [result, warn("jetstream", "not checked: NATS is not reachable")];
  }
  try {
    const info = nc.info;
    const reach = ok("nats", `connected to ${servers.join(", ")}${info ? ` (nats-server ${info.version}${info.tls_required ? ", TLS" : ""})` : ""}${embedded ? ", embedded" : ""}`);
    return [reach, await checkJetStream(nc, config)];
  } finally {
    await nc.close().catch(() => undefined);
  }
}

async function checkJetStream(nc: NatsConnection, config: Config): Promise<CheckResult> {
  const name = "jetstream";
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    const account = await jsm.getAccountInfo();
    const usage = `${account.streams} stream${account.streams === 1 ? "" : "s"}, ${formatBytes(account.storage)} stored`;
    try {
      const stream = await jsm.streams.info(config.nats.stream);
      return ok(name, `enabled (${usage}); stream ${config.nats.stream}: ${stream.state.messages} messages`);
    } catch (err) {
      if (/not found/i.test((err as Error).message)) return ok(name, `enabled (${usage}); stream ${config.nats.stream} is created when the daemon starts`);
      throw err;
    }
  } catch (err) {
    if ((err as Error).name === "JetStreamNotEnabled" || /jetstream (is )?not enabled/i.test((err as Error).message)) {
      return fail(name, `not enabled on the server (${(err as Error).message})`, "run nats-server with -js (or a `jetstream {}` block), and enable JetStream for vqd's account");
    }
    return fail(name, `cannot query JetStream: ${(err as Error).message}`, "check the server's JetStream and the account's permissions on $JS.API.>");
  }
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/** dataDir exists (or can be created), is a directory, and a file can really be created in it. */
export async function checkDataDir(config: Config): Promise<CheckResult> {
  const name = "data dir";
  const dir = config.dataDir;
  const info = await statOrError(dir);
  if ("error" in info) {
    if (info.code === "ENOENT") {
      const parent = await nearestExisting(dirname(dir));
      if (!parent.ok) return fail(name, `${dir} does not exist and cannot be created: ${parent.error}`, "set dataDir to a directory vqd can create, or create it and chown it to the vqd user");
      const probe = await probeWritable(parent.path);
      if (probe !== null) return fail(name, `${dir} does not exist and cannot be created in ${parent.path}: ${probe}`, `create it: install -d -o vqd -g vqd -m 0700 ${dir}`);
      return warn(name, `${dir} does not exist yet; the daemon creates it at start`, "run `vqd start` (or systemctl start vqd)");
    }
    if (info.code === "ENOTDIR") return fail(name, `${dir} cannot exist: a parent of it is a file, not a directory`, "set dataDir to a path under a directory");
    return fail(name, `cannot inspect ${dir}: ${info.error}`, "check the permissions of dataDir and its parents");
  }
  if (!info.isDirectory()) return fail(name, `${dir} is not a directory`, "set dataDir to a directory (or move the file away)");
  const probe = await probeWritable(dir);
  if (probe !== null) return fail(name, `${dir} is not writable: ${probe}`, `chown -R vqd:vqd ${dir} (the service user must own it), and check that its file system is mounted read-write`);
  const mode = info.mode & 0o777;
  if (mode & 0o022) return warn(name, `${dir} is writable by ${mode & 0o002 ? "every user" : "its group"} (mode ${mode.toString(8).padStart(4, "0")})`, `chmod go-w ${dir}`);
  return ok(name, `${dir} is writable (mode ${mode.toString(8).padStart(4, "0")})`);
}

/** `PRAGMA integrity_check` on a read-only connection. */
export async function checkDatabase(config: Config): Promise<CheckResult> {
  const name = "database";
  const file = config.database.file;
  if (file === ":memory:") return ok(name, "in memory (database.file is :memory:): nothing to check");
  const info = await statOrError(file);
  if ("error" in info) {
    if (info.code === "ENOENT") return warn(name, `${file} does not exist yet; the daemon creates it at start`, "run `vqd start` (or systemctl start vqd)");
    return fail(name, `cannot inspect ${file}: ${info.error}`, "fix dataDir / database.file (see the data dir line)");
  }
  if (!info.isFile()) return fail(name, `${file} is not a regular file`, "set database.file to a file path");
  const restore = "stop vqd, move the damaged file aside and restore the last backup (`sqlite3 FILE .recover` salvages what is readable); vqd creates an empty database if none exists";
  let db: BetterSqlite3.Database | undefined;
  try {
    db = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
    db.pragma(`busy_timeout = ${config.database.busyTimeoutMs}`);
    const rows = db.pragma("integrity_check") as { integrity_check: string }[];
    const problems = rows.map((r) => r.integrity_check).filter((m) => m !== "ok");
    if (problems.length > 0) {
      return fail(name, `${file} failed PRAGMA integrity_check: ${problems.slice(0, 3).join("; ")}${problems.length > 3 ? ` (+${problems.length - 3} more)` : ""}`, restore);
    }
    const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name));
    const missing = ["events", "videos", "outbox"].filter((t) => !tables.has(t));
    if (missing.length === 3) return warn(name, `${file} passes integrity_check but holds no vqd tables`, "check database.file: it should be vqd's database (the daemon creates the tables at start)");
    if (missing.length > 0) return fail(name, `${file} lacks the table${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`, restore);
    const { events, videos } = db.prepare("SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM videos) AS videos").get() as { events: number; videos: number };
    return ok(name, `${file}: integrity ok, ${events} events, ${videos} videos, ${formatBytes(info.size)}`);
  } catch (err) {
    return fail(name, `${file} cannot be read as a SQLite database: ${(err as Error).message}`, restore);
  } finally {
    db?.close();
  }
}

/** Free space where outputs are written: warn below 1 GiB, fail below 100 MiB (by default). */
export async function checkOutputSpace(config: Config, thresholds: SpaceThresholds = DEFAULT_SPACE): Promise<CheckResult> {
  const name = "output space";
  const dir = config.outputDir;
  const where = await nearestExisting(dir);
  if (!where.ok) return fail(name, `cannot find a directory for ${dir}: ${where.error}`, "set outputDir to a path under an existing directory");
  let free: number;
  try {
    const s = await statfs(where.path);
    free = s.bavail * s.bsize;
  } catch (err) {
    return fail(name, `cannot read the free space of ${where.path}: ${(err as Error).message}`, "check outputDir");
  }
  const at = where.path === dir ? dir : `${dir} (not created yet; measured at ${where.path})`;
  const detail = `${formatBytes(free)} free in ${at}`;
  const hint = "free some space (finished outputs under outputDir, old reports) or move outputDir to a larger file system";
  if (free < thresholds.failBelow) return fail(name, `${detail}, below ${formatBytes(thresholds.failBelow)}`, hint);
  if (free < thresholds.warnBelow) return warn(name, `${detail}, below ${formatBytes(thresholds.warnBelow)}`, hint);
  return ok(name, detail);
}

/** Every allowed root is an existing, readable directory. */
export async function checkAllowedRoots(config: Config): Promise<CheckResult> {
  const name = "allowed roots";
  const roots = config.allowedRoots;
  if (roots.length === 0) return warn(name, "none configured: every enqueue is refused", "list the folders videos come from in allowedRoots (or VQD_ALLOWEDROOTS='[/srv/videos]')");
  const problems: string[] = [];
  for (const root of roots) {
    const info = await statOrError(root);
    if ("error" in info) problems.push(`${root}: ${info.code === "ENOENT" ? "does not exist" : info.error}`);
    else if (!info.isDirectory()) problems.push(`${root}: not a directory`);
    else {
      try {
        await access(root, constants.R_OK | constants.X_OK);
      } catch {
        problems.push(`${root}: not readable`);
      }
    }
  }
  if (problems.length > 0) {
    return fail(name, problems.join("; "), "create the folders (readable by the vqd user; under systemd, ProtectHome=yes hides /home, /root and /run/user) or fix allowedRoots");
  }
  return ok(name, roots.join(", "));
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type VersionRun = { ok: true; output: string; path: string } | { ok: false; error: string };

/** Runs `binary args` (no shell) and returns its first output lines, or why it could not run. */
export function runVersion(binary: string, args: readonly string[], timeoutMs = 5000): Promise<VersionRun> {
  return new Promise<VersionRun>((resolve) => {
    let out = "";
    let settled = false;
    const done = (r: VersionRun): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const child = spawn(binary, [...args], { stdio: ["ignore", "pipe", "pipe"] });
    const collect = (d: Buffer): void => {
      if (out.length < 4000) out += d.toString();
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      done({ ok: false, error: `${binary} ${args.join(" ")} did not answer within ${timeoutMs} ms` });
    }, timeoutMs);
    child.once("error", (err: NodeJS.ErrnoException) => {
      done({ ok: false, error: err.code === "ENOENT" ? `not found: ${JSON.stringify(binary)}` : `cannot run ${JSON.stringify(binary)}: ${err.message}` });
    });
    child.once("close", (code, signal) => {
      const output = out.trim();
      if (code === 0) done({ ok: true, output, path: binary });
      else done({ ok: false, error: `${binary} ${args.join(" ")} failed (${signal ?? `exit ${code}`}): ${output.split("\n")[0]?.slice(0, 120) ?? ""}` });
    });
  }).then(async (r): Promise<VersionRun> => (r.ok ? { ...r, path: await whichPath(binary) } : r));
}

/** Where a bare command name resolves in PATH (for display only). */
async function whichPath(binary: string): Promise<string> {
  if (binary.includes("/")) return binary;
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (!dir) continue;
    const candidate = join(dir, binary);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return binary;
}

type StatResult = Stats | { error: string; code: string | undefined };

async function statOrError(path: string): Promise<StatResult> {
  try {
    return await stat(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { error: e.message, code: e.code };
  }
}

/** The path itself or its closest existing ancestor, which must be a directory. */
async function nearestExisting(path: string): Promise<{ ok: true; path: string } | { ok: false; error: string }> {
  let current = path;
  for (;;) {
    const info = await statOrError(current);
    if (!("error" in info)) return info.isDirectory() ? { ok: true, path: current } : { ok: false, error: `${current} is not a directory` };
    if (info.code !== "ENOENT") return { ok: false, error: info.code === "ENOTDIR" ? `a parent of ${current} is a file, not a directory` : info.error };
    const parent = dirname(current);
    if (parent === current) return { ok: false, error: `no existing directory above ${path}` };
    current = parent;
  }
}

/**
 * Creates and removes a temporary directory in `dir`: the only test that is true for root too
 * (access(W_OK) says yes to root on any directory of a read-write file system). Null when it worked.
 */
async function probeWritable(dir: string): Promise<string | null> {
  try {
    const probe = await mkdtemp(join(dir, ".vqd-doctor-"));
    await rm(probe, { recursive: true, force: true });
    return null;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return e.code === "EROFS" ? "read-only file system" : e.code === "EACCES" || e.code === "EPERM" ? "permission denied" : e.message;
  }
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((p) => Number.parseInt(p, 10) || 0);
  const pb = b.split(/[.-]/).map((p) => Number.parseInt(p, 10) || 0);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

export function formatBytes(n: number): string {
  if (n >= GiB) return `${(n / GiB).toFixed(1)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
