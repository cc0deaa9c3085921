/**
 * The baseline the data layer is judged against (DESIGN.md: insert / select-by-id / update
 * through the data layer <= 1.5x raw better-sqlite3): the same SQL work as the store does, as
 * hand-written better-sqlite3 prepared statements and transaction functions made once. The
 * domain's decide/evolve and the row mapping are shared with the store, so the ratio measures
 * the data layer itself (Kysely-compiled statements, the transaction wrapper, projections).
 */
import { randomUUID } from "node:crypto";
import type BetterSqlite3 from "better-sqlite3";
import { decide, evolve, wantsDispatch, type Lane, type Video } from "../domain/index.js";
import type { NewEvent } from "../store/index.js";
import { rowToVideo, videoToRow, type VideoRow } from "../store/video-rows.js";

export interface RawStore {
  append(streamId: string, expected: number, event: NewEvent): number;
  get(id: string): Video | null;
  list(limit: number): Video[];
  changePriority(id: string, lane: Lane): Video;
}

export function rawStore(raw: BetterSqlite3.Database): RawStore {
  const version = raw.prepare<[string], { stream_version: number }>(
    "SELECT stream_version FROM events WHERE stream_id = ? ORDER BY stream_version DESC LIMIT 1",
  );
  const insertEvent = raw.prepare<[string, string, number, string, string, string, string]>(
    "INSERT INTO events (event_id, stream_id, stream_version, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
  );
  const getVideo = raw.prepare<[string], VideoRow>("SELECT * FROM videos WHERE id = ?");
  const listVideos = raw.prepare<[number], VideoRow>("SELECT * FROM videos ORDER BY id LIMIT ?");
  const updateVideo = raw.prepare(
    `UPDATE videos SET version = @version, state = @state, lane = @lane, pipeline = @pipeline, path = @path,
       attempts = @attempts, max_attempts = @max_attempts, dispatch = @dispatch, current_step = @current_step,
       steps = @steps, completed_steps = @completed_steps, last_error = @last_error, metadata = @metadata,
       not_before = @not_before, enqueued_at = @enqueued_at, updated_at = @updated_at, started_at = @started_at,
       finished_at = @finished_at WHERE id = @id`,
  );
  const supersede = raw.prepare<[string, string, number]>(
    "UPDATE outbox SET sent_at = ?, last_error = 'superseded' WHERE video_id = ? AND dispatch < ? AND sent_at IS NULL",
  );
  const insertOutbox = raw.prepare<[string, number, string, string, number, string]>(
    "INSERT INTO outbox (video_id, dispatch, lane, msg_id, available_at, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (msg_id) DO NOTHING",
  );

  const append = raw.transaction((streamId: string, expected: number, event: NewEvent): number => {
    const current = version.get(streamId)?.stream_version ?? 0;
    if (current !== expected) throw new Error(`concurrency conflict on ${streamId}`);
    const info = insertEvent.run(
      event.eventId ?? randomUUID(),
      streamId,
      current + 1,
      event.type,
      JSON.stringify(event.data),
      JSON.stringify(event.metadata ?? {}),
      new Date().toISOString(),
    );
    return Number(info.lastInsertRowid);
  });

  const changePriority = raw.transaction((id: string, lane: Lane): Video => {
    const row = getVideo.get(id);
    if (!row) throw new Error(`no video ${id}`);
    const before = rowToVideo(row);
    const now = new Date();
    const at = now.toISOString();
    const decided = decide(id, before, { type: "ChangePriority", lane }, now);
    let version = before.version;
    let after: Video = before;
    for (const e of decided) {
      version += 1;
      insertEvent.run(randomUUID(), id, version, e.type, JSON.stringify(e.data), "{}", at);
      after = evolve(id, after, e);
    }
    updateVideo.run(videoToRow(after));
    if (after.dispatch !== before.dispatch) {
      supersede.run(at, id, after.dispatch);
      if (wantsDispatch(after)) {
        insertOutbox.run(id, after.dispatch, after.lane, `${id}.${after.dispatch}`, after.notBefore ? Date.parse(after.notBefore) : now.getTime(), at);
      }
    }
    return after;
  });

  return {
    append: (streamId, expected, event) => append.immediate(streamId, expected, event),
    get: (id) => {
      const row = getVideo.get(id);
      return row ? rowToVideo(row) : null;
    },
    list: (limit) => listVideos.all(limit).map(rowToVideo),
    changePriority: (id, lane) => changePriority.immediate(id, lane),
  };
}
