import type BetterSqlite3 from "better-sqlite3";
import type { Database } from "../store/index.js";

/** One row of `inbox_files` (migration 0002_inbox). */
export interface KnownFile {
  /** The file's path in the inbox (the inbox folder's real path joined with the file's name). */
  readonly path: string;
  /** The inbox folder (real path) it was found in. */
  readonly inbox: string;
  readonly size: number;
  /** Modification time in nanoseconds, as a decimal string (exact, unlike a float). */
  readonly mtimeNs: string;
  /** The path the enqueue validated and recorded (symlinks resolved). */
  readonly realPath: string;
  /** NULL while the enqueue is in flight. */
  readonly videoId: string | null;
  readonly recordedAt: string;
}

export interface NewKnownFile {
  readonly path: string;
  readonly inbox: string;
  readonly size: number;
  readonly mtimeNs: string;
  readonly realPath: string;
}

interface Row {
  path: string;
  inbox: string;
  size: number;
  mtime_ns: string;
  real_path: string;
  video_id: string | null;
  recorded_at: string;
}

const toKnown = (r: Row): KnownFile => ({
  path: r.path,
  inbox: r.inbox,
  size: r.size,
  mtimeNs: r.mtime_ns,
  realPath: r.real_path,
  videoId: r.video_id,
  recordedAt: r.recorded_at,
});

/**
 * The files watched inboxes have enqueued, in the daemon's SQLite database. Prepared
 * statements on the raw connection: a lookup per settled file, a write per enqueued batch.
 *
 * Crash safety: a batch is first recorded as pending (video_id NULL), then enqueued, then its
 * rows get their video ids. After a crash between the enqueue and the last step,
 * `recoverPending()` finds the video the enqueue recorded (same path, enqueued after the
 * pending row) instead of enqueueing the file a second time.
 */
export class KnownFiles {
  readonly #raw: BetterSqlite3.Database;
  readonly #now: () => Date;
  readonly #get: BetterSqlite3.Statement<[string], Row>;
  readonly #byVideo: BetterSqlite3.Statement<[string], Row>;
  readonly #upsert: BetterSqlite3.Statement<[Row]>;
  readonly #setVideo: BetterSqlite3.Statement<[string, string]>;
  readonly #delete: BetterSqlite3.Statement<[string]>;
  readonly #pending: BetterSqlite3.Statement<[], Row>;
  readonly #findVideo: BetterSqlite3.Statement<[string, string], { id: string }>;

  constructor(db: Pick<Database, "raw">, options: { now?: () => Date } = {}) {
    const raw = db.raw;
    this.#raw = raw;
    this.#now = options.now ?? (() => new Date());
    this.#get = raw.prepare("SELECT * FROM inbox_files WHERE path = ?");
    this.#byVideo = raw.prepare("SELECT * FROM inbox_files WHERE video_id = ?");
    this.#upsert = raw.prepare(
      `INSERT INTO inbox_files (path, inbox, size, mtime_ns, real_path, video_id, recorded_at)
       VALUES (@path, @inbox, @size, @mtime_ns, @real_path, @video_id, @recorded_at)
       ON CONFLICT(path) DO UPDATE SET inbox = excluded.inbox, size = excluded.size, mtime_ns = excluded.mtime_ns,
         real_path = excluded.real_path, video_id = excluded.video_id, recorded_at = excluded.recorded_at`,
    );
    this.#setVideo = raw.prepare("UPDATE inbox_files SET video_id = ? WHERE path = ?");
    this.#delete = raw.prepare("DELETE FROM inbox_files WHERE path = ?");
    this.#pending = raw.prepare("SELECT * FROM inbox_files WHERE video_id IS NULL");
    this.#findVideo = raw.prepare("SELECT id FROM videos WHERE path = ? AND enqueued_at >= ? ORDER BY id DESC LIMIT 1");
  }

  get(path: string): KnownFile | undefined {
    const r = this.#get.get(path);
    return r && toKnown(r);
  }

  byVideo(videoId: string): KnownFile | undefined {
    const r = this.#byVideo.get(videoId);
    return r && toKnown(r);
  }

  /** Records files about to be enqueued (replacing older rows for the same paths). */
  markPending(files: readonly NewKnownFile[]): void {
    const at = this.#now().toISOString();
    this.#raw.transaction(() => {
      for (const f of files) {
        this.#upsert.run({ path: f.path, inbox: f.inbox, size: f.size, mtime_ns: f.mtimeNs, real_path: f.realPath, video_id: null, recorded_at: at });
      }
    })();
  }

  /** Gives pending rows the ids their enqueue returned. */
  markEnqueued(entries: readonly { readonly path: string; readonly videoId: string }[]): void {
    if (entries.length === 0) return;
    this.#raw.transaction(() => {
      for (const e of entries) this.#setVideo.run(e.videoId, e.path);
    })();
  }

  forget(paths: readonly string[]): void {
    if (paths.length === 0) return;
    this.#raw.transaction(() => {
      for (const p of paths) this.#delete.run(p);
    })();
  }

  /**
   * Resolves rows left pending by a crash: a row whose enqueue reached the store gets that
   * video's id; a row whose enqueue did not is dropped, so the file is considered again.
   */
  recoverPending(): { readonly resolved: number; readonly dropped: number } {
    let resolved = 0;
    let dropped = 0;
    this.#raw.transaction(() => {
      for (const r of this.#pending.all()) {
        const video = this.#findVideo.get(r.real_path, r.recorded_at);
        if (video) {
          this.#setVideo.run(video.id, r.path);
          resolved++;
        } else {
          this.#delete.run(r.path);
          dropped++;
        }
      }
    })();
    return { resolved, dropped };
  }
}
