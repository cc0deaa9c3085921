/**
 * Shared helpers for the store suites: scratch directories that are removed after the file's
 * tests, databases that are closed before that, a controllable clock, command builders, and a
 * way to run a small child node script against the compiled store.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";

import type { BackoffPolicy, Lane, VideoCommand } from "../../src/domain/index.js";
import { openDatabase, type Database, type DatabaseOptions } from "../../src/store/index.js";

const dirs: string[] = [];
const open = new Set<Database>();

after(async () => {
  for (const db of open) await db.close();
  open.clear();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary directory, removed (with everything in it) when the test file ends. */
export function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "vqd-store-test-"));
  dirs.push(dir);
  return dir;
}

/** Opens a database that is closed for sure at the end of the file (closing twice is a no-op). */
export async function openDb(file: string, options: Omit<DatabaseOptions, "file"> = {}): Promise<Database> {
  const db = await openDatabase({ file, ...options });
  open.add(db);
  return db;
}

/** A fresh database file in a fresh scratch directory. */
export async function freshDb(options: Omit<DatabaseOptions, "file"> = {}): Promise<{ db: Database; file: string; dir: string }> {
  const dir = scratchDir();
  const file = join(dir, "vqd.db");
  return { db: await openDb(file, options), file, dir };
}

/** A clock the test moves by hand. */
export function manualClock(startIso = "2025-03-01T12:00:00.000Z") {
  let ms = Date.parse(startIso);
  return {
    now: (): Date => new Date(ms),
    ms: (): number => ms,
    advance(deltaMs: number): void {
      ms += deltaMs;
    },
    set(atMs: number): void {
      ms = atMs;
    },
  };
}

/** Counts rows of a table through the raw handle. */
export function count(db: Database, table: "events" | "videos" | "outbox", where = "1 = 1"): number {
  return (db.raw.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${where}`).get() as { n: number }).n;
}

/** Every row of a table, in a stable order: for before/after comparisons. */
export function dump(db: Database, table: "events" | "videos" | "outbox"): unknown[] {
  const order = table === "events" ? "position" : "id";
  return db.raw.prepare(`SELECT * FROM ${table} ORDER BY ${order}`).all();
}

// --- commands -------------------------------------------------------------------------------

export const STEPS = ["probe", "transcode", "thumbnail"] as const;
export const NO_JITTER: BackoffPolicy = { initialMs: 10_000, maxMs: 600_000, multiplier: 2, jitter: 0 };

export const enqueue = (
  o: { path?: string; steps?: readonly string[]; lane?: Lane; maxAttempts?: number; metadata?: Record<string, string>; pipeline?: string } = {},
): VideoCommand => ({
  type: "EnqueueVideo",
  path: o.path ?? "/in/a.mp4",
  pipeline: o.pipeline ?? "web",
  steps: o.steps ?? STEPS,
  lane: o.lane ?? "normal",
  maxAttempts: o.maxAttempts ?? 3,
  ...(o.metadata ? { metadata: o.metadata } : {}),
});
export const start = (dispatch: number, worker = "w1"): VideoCommand => ({ type: "StartAttempt", dispatch, worker });
/** The broker's (or the reconciler's) redelivery of a running video's job to another worker. */
export const redeliver = (dispatch: number, worker = "w2"): VideoCommand => ({ type: "StartAttempt", dispatch, worker, redelivered: true });
export const complete = (attempt: number, index: number, step: string, outputs: Record<string, unknown> = { file: `/out/${step}-${index}.mp4` }): VideoCommand => ({
  type: "CompleteStep",
  attempt,
  index,
  step,
  outputs,
  durationMs: 42,
});
export const fail = (attempt: number, o: { index?: number; step?: string; retryable?: boolean; random?: number; backoff?: BackoffPolicy } = {}): VideoCommand => ({
  type: "FailAttempt",
  attempt,
  index: o.index ?? 0,
  step: o.step ?? "probe",
  message: "ffmpeg exited with 1",
  retryable: o.retryable ?? true,
  backoff: o.backoff ?? NO_JITTER,
  random: o.random ?? 0.5,
});
export const cancel = (reason = "operator"): VideoCommand => ({ type: "CancelVideo", reason });
export const retry = (): VideoCommand => ({ type: "RetryVideo" });
export const priority = (lane: Lane): VideoCommand => ({ type: "ChangePriority", lane });

// --- child processes ------------------------------------------------------------------------

/** file:// URL of the compiled store barrel, for child scripts (this file runs from dist/test/store/). */
export const STORE_MODULE_URL = new URL("../../src/store/index.js", import.meta.url).href;

/** Writes `source` (an ES module; STORE_URL inside it is replaced) into dir and starts it. */
export function spawnScript(dir: string, name: string, source: string, args: readonly string[]): ChildProcessWithoutNullStreams {
  const file = join(dir, name);
  writeFileSync(file, source.replaceAll("STORE_URL", JSON.stringify(STORE_MODULE_URL)));
  return spawn(process.execPath, [file, ...args], { stdio: "pipe" });
}

/** Calls onLine for each stdout line of the child; collects stderr for error messages. */
export function lines(child: ChildProcessWithoutNullStreams, onLine: (line: string) => void): { stderr: () => string } {
  let buffer = "";
  let stderr = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      onLine(line);
    }
  });
  child.stderr.on("data", (chunk: string) => {
    stderr += chunk;
  });
  return { stderr: () => stderr };
}

/** Resolves with the exit code and signal once the child has exited. */
export function exited(child: ChildProcessWithoutNullStreams): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
}
