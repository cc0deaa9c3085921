import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from "kysely";
import { StoreError } from "./errors.js";

/**
 * Schema history. Never edit a migration that has shipped: add the next one.
 * Kysely records applied names in its own kysely_migration table.
 */
const migrations: Record<string, Migration> = {
  "0001_event_store": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("events")
        .addColumn("position", "integer", (c) => c.primaryKey().autoIncrement())
        .addColumn("event_id", "text", (c) => c.notNull().unique())
        .addColumn("stream_id", "text", (c) => c.notNull())
        .addColumn("stream_version", "integer", (c) => c.notNull())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("data", "text", (c) => c.notNull())
        .addColumn("metadata", "text", (c) => c.notNull().defaultTo("{}"))
        .addColumn("recorded_at", "text", (c) => c.notNull())
        .addUniqueConstraint("events_stream_version", ["stream_id", "stream_version"])
        .execute();
      // Invariant 3 held by the database as well as by the domain: one completion per video.
      await sql`CREATE UNIQUE INDEX events_one_completion ON events(stream_id) WHERE type = 'VideoCompleted'`.execute(db);

      await db.schema
        .createTable("videos")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("version", "integer", (c) => c.notNull())
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("lane", "text", (c) => c.notNull())
        .addColumn("pipeline", "text", (c) => c.notNull())
        .addColumn("path", "text", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull())
        .addColumn("max_attempts", "integer", (c) => c.notNull())
        .addColumn("dispatch", "integer", (c) => c.notNull())
        .addColumn("current_step", "text")
        .addColumn("steps", "text", (c) => c.notNull())
        .addColumn("completed_steps", "text", (c) => c.notNull())
        .addColumn("last_error", "text")
        .addColumn("metadata", "text", (c) => c.notNull())
        .addColumn("not_before", "text")
        .addColumn("enqueued_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .addColumn("started_at", "text")
        .addColumn("finished_at", "text")
        // One B-tree keyed by id instead of a rowid table plus a unique index: a command's
        // UPDATE touches half the pages.
        .modifyEnd(sql`without rowid`)
        .execute();
      // `vqd list --state S` (ids sort by enqueue time), counts per state, the reconciler's scan
      // of waiting and running videos. Every state change rewrites this index entry, so it is
      // the only secondary index on the table.
      await db.schema.createIndex("videos_state").on("videos").columns(["state", "id"]).execute();

      await db.schema
        .createTable("outbox")
        .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
        .addColumn("video_id", "text", (c) => c.notNull())
        .addColumn("dispatch", "integer", (c) => c.notNull())
        .addColumn("lane", "text", (c) => c.notNull())
        .addColumn("msg_id", "text", (c) => c.notNull().unique())
        .addColumn("available_at", "integer", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("sent_at", "text")
        .addColumn("stream_seq", "integer")
        .addColumn("publish_attempts", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("last_error", "text")
        .execute();
      await sql`CREATE INDEX outbox_pending ON outbox(available_at, id) WHERE sent_at IS NULL`.execute(db);
      // Superseding a video's unsent rows (a new dispatch, a cancel) and the reconciler's join
      // both look rows up by video and dispatch.
      await sql`CREATE INDEX outbox_video_dispatch ON outbox(video_id, dispatch)`.execute(db);
    },
  },
  "0002_inbox": {
    async up(db: Kysely<unknown>) {
      // Files the watched inboxes have enqueued (src/intake/known-files.ts): a file with the same
      // path, size and mtime is never enqueued twice, across restarts. video_id is NULL while an
      // enqueue is in flight; a restart resolves such rows against the videos table.
      await db.schema
        .createTable("inbox_files")
        .addColumn("path", "text", (c) => c.primaryKey())
        .addColumn("inbox", "text", (c) => c.notNull())
        .addColumn("size", "integer", (c) => c.notNull())
        .addColumn("mtime_ns", "text", (c) => c.notNull())
        .addColumn("real_path", "text", (c) => c.notNull())
        .addColumn("video_id", "text")
        .addColumn("recorded_at", "text", (c) => c.notNull())
        .modifyEnd(sql`without rowid`)
        .execute();
      await db.schema.createIndex("inbox_files_video").on("inbox_files").column("video_id").execute();
    },
  },
  "0003_telemetry": {
    async up(db: Kysely<unknown>) {
      // The W3C traceparent of the enqueue that created a video, carried by every job message of
      // it (src/telemetry): one trace per video across the NATS hop, retries included.
      await db.schema.alterTable("outbox").addColumn("traceparent", "text").execute();
      // `vqd snapshot memory` and the weekly schedule (src/telemetry/snapshots.ts).
      await db.schema
        .createTable("memory_snapshots")
        .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
        .addColumn("taken_at", "text", (c) => c.notNull())
        .addColumn("role", "text", (c) => c.notNull())
        .addColumn("pid", "integer", (c) => c.notNull())
        .addColumn("uptime_s", "real", (c) => c.notNull())
        .addColumn("rss", "integer", (c) => c.notNull())
        .addColumn("heap_total", "integer", (c) => c.notNull())
        .addColumn("heap_used", "integer", (c) => c.notNull())
        .addColumn("external", "integer", (c) => c.notNull())
        .addColumn("array_buffers", "integer", (c) => c.notNull())
        .addColumn("heap_stats", "text", (c) => c.notNull())
        .addColumn("heap_snapshot", "text")
        .execute();
      await db.schema.createIndex("memory_snapshots_role").on("memory_snapshots").columns(["role", "id"]).execute();
    },
  },
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

export async function migrateToLatest(db: Kysely<unknown>): Promise<string[]> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new StoreError(`database migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
