import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import { StoreError } from "./errors.js";
import { migrateToLatest } from "./migrations.js";
import type { Schema } from "./schema.js";

export type Synchronous = "normal" | "full";

export interface DatabaseOptions {
  /** Path of the SQLite file; ":memory:" for throwaway use. */
  readonly file: string;
  /** See the README's "Durability" section for what each level survives. Default "normal". */
  readonly synchronous?: Synchronous;
  readonly busyTimeoutMs?: number;
  readonly readonly?: boolean;
}

/** One SQLite connection, reachable both raw (hot paths) and through Kysely (everything else). */
export interface Database {
  readonly raw: BetterSqlite3.Database;
  readonly kysely: Kysely<Schema>;
  readonly file: string;
  close(): Promise<void>;
}

/**
 * Opens (creating if needed) and migrates the database with the production pragmas:
 * - journal_mode=WAL: readers never block the writer, and a commit is one sequential WAL write.
 * - synchronous=NORMAL (default): a commit is durable against a crash of the process (kill -9):
 *   it is in the WAL file, in the OS page cache. On power loss the last commits since the last
 *   WAL sync may roll back, the database stays consistent. synchronous=FULL fsyncs every commit
 *   and also survives power loss, at the price of one fsync per transaction.
 * - foreign_keys=ON, busy_timeout so a second process (the CLI) waits instead of failing.
 */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const { file } = options;
  let raw: BetterSqlite3.Database;
  try {
    if (file !== ":memory:" && !options.readonly) mkdirSync(dirname(file), { recursive: true });
    raw = new BetterSqlite3(file, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  } catch (err) {
    throw new StoreError(`cannot open database ${file}: ${(err as Error).message}`, { cause: err });
  }
  const busyTimeoutMs = Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000));
  try {
    raw.pragma(`busy_timeout = ${busyTimeoutMs}`);
    if (!options.readonly) {
      raw.pragma("journal_mode = WAL");
      raw.pragma(`synchronous = ${options.synchronous === "full" ? "FULL" : "NORMAL"}`);
      // Checkpoint every ~40 MB of WAL instead of every ~4 MB: each checkpoint copies the WAL back
      // and fsyncs, which was half the cost of a busy minute. Readers stay fast either way.
      raw.pragma("wal_autocheckpoint = 10000");
    }
    raw.pragma("foreign_keys = ON");
    raw.pragma("temp_store = MEMORY");
    // Probe the file: a corrupt or non-SQLite file fails here with a clear message.
    raw.prepare("SELECT count(*) FROM sqlite_master").get();
  } catch (err) {
    raw.close();
    throw new StoreError(`cannot use database ${file}: ${(err as Error).message}`, { cause: err });
  }
  const kysely = new Kysely<Schema>({ dialect: new SqliteDialect({ database: raw }) });
  if (!options.readonly) {
    try {
      await migrateLocked(raw, kysely as Kysely<unknown>, busyTimeoutMs);
    } catch (err) {
      await kysely.destroy();
      if (raw.open) raw.close();
      throw new StoreError(`cannot migrate database ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
  let closing: Promise<void> | undefined;
  return {
    raw,
    kysely,
    file,
    close() {
      // Kysely's destroy() closes the better-sqlite3 handle; keep the promise so a second close is a no-op.
      closing ??= kysely.destroy().then(() => {
        if (raw.open) raw.close();
      });
      return closing;
    },
  };
}

/**
 * Kysely runs SQLite migrations outside any transaction and without a lock between connections
 * (its SqliteAdapter has no transactional DDL and a no-op migration lock). So two processes
 * opening a fresh file at once both ran 0001 and one failed with `table "events" already
 * exists`, and a crash in the middle of a migration left a half-built schema that no later open
 * could get past. Hold the write lock (BEGIN IMMEDIATE) for the whole run instead: the second
 * opener waits, then finds nothing to do; a failed or interrupted run leaves nothing behind.
 * The lock is polled with a zero busy timeout so that a second open in the same process (which
 * can only progress once this event loop turn ends) is not blocked synchronously.
 */
async function migrateLocked(raw: BetterSqlite3.Database, kysely: Kysely<unknown>, busyTimeoutMs: number): Promise<void> {
  const deadline = Date.now() + busyTimeoutMs;
  raw.pragma("busy_timeout = 0");
  try {
    for (;;) {
      try {
        raw.exec("BEGIN IMMEDIATE");
        break;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (typeof code !== "string" || !code.startsWith("SQLITE_BUSY") || Date.now() >= deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  } finally {
    raw.pragma(`busy_timeout = ${busyTimeoutMs}`);
  }
  try {
    await migrateToLatest(kysely);
    raw.exec("COMMIT");
  } catch (err) {
    if (raw.inTransaction) raw.exec("ROLLBACK");
    throw err;
  }
}
