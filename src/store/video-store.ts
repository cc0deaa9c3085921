import { sql } from "kysely";
import {
  decide,
  evolve,
  isDomainError,
  LANES,
  VIDEO_STATES,
  wantsDispatch,
  type Lane,
  type Video,
  type VideoCommand,
  type VideoEvent,
  type VideoState,
} from "../domain/index.js";
import type { Database } from "./database.js";
import { isConcurrencyError } from "./errors.js";
import { param, prepare } from "./prepared.js";
import type { VideosTable } from "./schema.js";
import { SqliteEventStore, type StoredEvent } from "./sqlite-event-store.js";
import { rowToVideo, videoToRow, type VideoRow } from "./video-rows.js";

/** A read model fed in the same transaction as the append; a throw rolls the whole append back. */
export interface Projection {
  readonly name: string;
  apply(event: StoredEvent<VideoEvent["data"]>, video: Video): void;
}

export interface CommandResult {
  readonly video: Video;
  readonly events: readonly StoredEvent[];
}

export type BatchItemResult =
  | ({ readonly ok: true; readonly videoId: string } & CommandResult)
  | { readonly ok: false; readonly videoId: string; readonly error: Error };

export interface CommandItem {
  readonly videoId: string;
  readonly command: VideoCommand;
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** W3C traceparent of the span that submitted the command (not stored): the commit's span links to it. */
  readonly trace?: string;
}

export interface ListQuery {
  readonly state?: VideoState;
  readonly lane?: Lane;
  readonly limit?: number;
  /** Videos enqueued after this id (ids sort by time): for paging. */
  readonly afterId?: string;
}

export interface OutboxEntry {
  readonly id: number;
  readonly videoId: string;
  readonly dispatch: number;
  readonly lane: Lane;
  readonly msgId: string;
  readonly availableAt: number;
  /** W3C traceparent of the video's enqueue, for the job message's headers; null when none was traced. */
  readonly traceparent: string | null;
}

export type StateCounts = Record<VideoState, number>;

export interface InFlightVideo {
  readonly videoId: string;
  readonly state: VideoState;
  readonly lane: Lane;
  readonly dispatch: number;
  readonly outbox: { readonly id: number; readonly sentAt: string | null; readonly streamSeq: number | null; readonly superseded: boolean } | null;
}

/**
 * Runs video commands against the event log: load the video row, decide, append, evolve, and
 * write the `videos` read model and the outbox in the same transaction.
 */
export class VideoStore {
  readonly events: SqliteEventStore;
  readonly #db: Database;
  readonly #now: () => Date;
  readonly #projections: readonly Projection[];
  readonly #stmts;
  readonly #savepoint: (item: CommandItem) => CommandResult;

  constructor(db: Database, options: { now?: () => Date; projections?: readonly Projection[] } = {}) {
    this.#db = db;
    this.#savepoint = db.raw.transaction((i: CommandItem) => this.#executeInTransaction(i.videoId, i.command, i.metadata));
    this.#now = options.now ?? (() => new Date());
    this.#projections = options.projections ?? [];
    this.events = new SqliteEventStore(db, { now: this.#now });
    const k = db.kysely;
    const raw = db.raw;
    const row = (): Record<keyof VideosTable, never> => ({
      id: param("id"),
      version: param("version"),
      state: param("state"),
      lane: param("lane"),
      pipeline: param("pipeline"),
      path: param("path"),
      attempts: param("attempts"),
      max_attempts: param("max_attempts"),
      dispatch: param("dispatch"),
      current_step: param("current_step"),
      steps: param("steps"),
      completed_steps: param("completed_steps"),
      last_error: param("last_error"),
      metadata: param("metadata"),
      not_before: param("not_before"),
      enqueued_at: param("enqueued_at"),
      updated_at: param("updated_at"),
      started_at: param("started_at"),
      finished_at: param("finished_at"),
    });
    this.#stmts = {
      get: prepare<VideoRow, { id: string }>(raw, k.selectFrom("videos").selectAll().where("id", "=", param("id"))),
      insert: prepare<never, Record<string, unknown>>(raw, k.insertInto("videos").values(row())),
      update: prepare<never, Record<string, unknown>>(
        raw,
        k
          .updateTable("videos")
          .set((({ id: _id, ...rest }) => rest)(row()))
          .where("id", "=", param("id")),
      ),
      outboxInsert: prepare<never, Record<string, unknown>>(
        raw,
        k
          .insertInto("outbox")
          .values({
            video_id: param("video_id"),
            dispatch: param("dispatch"),
            lane: param("lane"),
            msg_id: param("msg_id"),
            available_at: param("available_at"),
            created_at: param("created_at"),
            traceparent: param("traceparent"),
          })
          .onConflict((oc) => oc.column("msg_id").doNothing()),
      ),
      // The trace a video's later dispatches (retries, redrives, recovery copies) continue.
      firstTrace: prepare<{ traceparent: string | null }, { video_id: string }>(
        raw,
        k.selectFrom("outbox").select("traceparent").where("video_id", "=", param("video_id")).where("traceparent", "is not", null).orderBy("id").limit(1),
      ),
      // A newer dispatch (or a cancel) makes older unsent rows pointless: the store would drop them anyway.
      outboxSupersede: prepare<never, { video_id: string; dispatch: number; now: string }>(
        raw,
        k
          .updateTable("outbox")
          .set({ sent_at: param("now"), last_error: "superseded" })
          .where("video_id", "=", param("video_id"))
          .where("dispatch", "<", param("dispatch"))
          .where("sent_at", "is", null),
      ),
      outboxPending: prepare<
        { id: number; video_id: string; dispatch: number; lane: string; msg_id: string; available_at: number; traceparent: string | null },
        { now: number; limit: number }
      >(
        raw,
        k
          .selectFrom("outbox")
          .select(["id", "video_id", "dispatch", "lane", "msg_id", "available_at", "traceparent"])
          .where("sent_at", "is", null)
          .where("available_at", "<=", param("now"))
          .orderBy("available_at")
          .orderBy("id")
          .limit(param("limit")),
      ),
      outboxSent: prepare<never, { id: number; now: string; seq: number }>(
        raw,
        k
          .updateTable("outbox")
          .set({ sent_at: param("now"), stream_seq: param("seq"), publish_attempts: sql`publish_attempts + 1`, last_error: null })
          .where("id", "=", param("id")),
      ),
      outboxFailed: prepare<never, { id: number; error: string }>(
        raw,
        k
          .updateTable("outbox")
          .set({ publish_attempts: sql`publish_attempts + 1`, last_error: param("error") })
          .where("id", "=", param("id")),
      ),
      nextAvailable: prepare<{ at: number | null }, Record<string, never>>(
        raw,
        k.selectFrom("outbox").select((eb) => eb.fn.min("available_at").as("at")).where("sent_at", "is", null),
      ),
    };
  }

  get database(): Database {
    return this.#db;
  }

  get(videoId: string): Video | null {
    const r = this.#stmts.get.get({ id: videoId });
    return r ? rowToVideo(r) : null;
  }

  /** Runs one command in its own transaction. Throws the DomainError when it is refused. */
  execute(videoId: string, command: VideoCommand, metadata?: Readonly<Record<string, unknown>>): CommandResult {
    return this.events.transaction(() => this.#executeInTransaction(videoId, command, metadata));
  }

  /**
   * Runs many commands in one transaction (one commit for the lot). A refused command is
   * reported in its slot and the others still apply; an I/O or projection failure rolls back all.
   */
  executeMany(items: readonly CommandItem[]): BatchItemResult[] {
    // decide() refuses before anything is written, so without projections a refused item has
    // recorded nothing. A projection may throw a DomainError after the writes: then each item
    // runs in its own savepoint so that a refused item really records nothing.
    const runItem = this.#projections.length > 0 ? this.#savepoint : (i: CommandItem) => this.#executeInTransaction(i.videoId, i.command, i.metadata);
    return this.events.transaction(() =>
      items.map((item): BatchItemResult => {
        try {
          return { ok: true, videoId: item.videoId, ...runItem(item) };
        } catch (error) {
          if (isRefusal(error)) return { ok: false, videoId: item.videoId, error };
          throw error;
        }
      }),
    );
  }


  #executeInTransaction(videoId: string, command: VideoCommand, metadata?: Readonly<Record<string, unknown>>): CommandResult {
    const now = this.#now();
    const before = this.get(videoId);
    const decided = decide(videoId, before, command, now);
    const appended = this.events.appendInTransaction(
      videoId,
      before?.version ?? 0,
      decided.map((e) => ({ type: e.type, data: e.data, metadata: metadata ?? {} })),
      before?.version ?? 0,
    );
    let video = before;
    for (const e of decided) video = evolve(videoId, video, e);
    const after = video as Video;
    this.#writeVideo(after, before === null);
    this.#writeOutbox(before, after, now, metadata);
    this.#runProjections(appended.events, after);
    return { video: after, events: appended.events };
  }

  #writeVideo(video: Video, isNew: boolean): void {
    const values = videoToRow(video);
    if (isNew) this.#stmts.insert.run(values);
    else this.#stmts.update.run(values);
  }

  #writeOutbox(before: Video | null, after: Video, now: Date, metadata?: Readonly<Record<string, unknown>>): void {
    const nowIso = now.toISOString();
    if (before && after.dispatch !== before.dispatch) {
      this.#stmts.outboxSupersede.run({ video_id: after.id, dispatch: after.dispatch, now: nowIso });
    }
    if (before && !wantsDispatch(after) && wantsDispatch(before)) {
      // Cancelled while waiting: its message is no longer wanted.
      this.#stmts.outboxSupersede.run({ video_id: after.id, dispatch: after.dispatch + 1, now: nowIso });
    }
    if ((before === null || after.dispatch !== before.dispatch) && wantsDispatch(after)) {
      const availableAt = after.notBefore ? Date.parse(after.notBefore) : now.getTime();
      this.#stmts.outboxInsert.run({
        video_id: after.id,
        dispatch: after.dispatch,
        lane: after.lane,
        msg_id: jobMessageId(after.id, after.dispatch),
        available_at: availableAt,
        created_at: nowIso,
        traceparent: before === null ? traceparentOf(metadata) : this.#firstTrace(after.id),
      });
    }
  }

  #runProjections(events: readonly StoredEvent[], video: Video): void {
    for (const p of this.#projections) {
      for (const e of events) p.apply(e as StoredEvent<VideoEvent["data"]>, video);
    }
  }

  /** The event timeline of one video, oldest first. */
  timeline(videoId: string): StoredEvent[] {
    return this.events.readStream(videoId);
  }

  async list(query: ListQuery = {}): Promise<Video[]> {
    let q = this.#db.kysely.selectFrom("videos").selectAll();
    if (query.state) q = q.where("state", "=", query.state);
    if (query.lane) q = q.where("lane", "=", query.lane);
    if (query.afterId) q = q.where("id", ">", query.afterId);
    const rows = await q.orderBy("id").limit(query.limit ?? 100).execute();
    return rows.map(rowToVideo);
  }

  /** Videos per state, and waiting (queued or retrying) videos per lane. */
  async counts(): Promise<{ byState: StateCounts; waitingByLane: Record<Lane, number>; total: number }> {
    const k = this.#db.kysely;
    const byState = Object.fromEntries(VIDEO_STATES.map((s) => [s, 0])) as StateCounts;
    const waitingByLane = Object.fromEntries(LANES.map((l) => [l, 0])) as Record<Lane, number>;
    let total = 0;
    const rows = await k.selectFrom("videos").select(["state", "lane", (eb) => eb.fn.countAll<number>().as("n")]).groupBy(["state", "lane"]).execute();
    for (const r of rows) {
      const state = r.state as VideoState;
      byState[state] = (byState[state] ?? 0) + r.n;
      if (state === "queued" || state === "retrying") waitingByLane[r.lane as Lane] += r.n;
      total += r.n;
    }
    return { byState, waitingByLane, total };
  }

  /** Unsent job messages whose time has come, oldest first. */
  pendingOutbox(limit: number, now = this.#now().getTime()): OutboxEntry[] {
    return this.#stmts.outboxPending.all({ now, limit }).map((r) => ({
      id: r.id,
      videoId: r.video_id,
      dispatch: r.dispatch,
      lane: r.lane as Lane,
      msgId: r.msg_id,
      availableAt: r.available_at,
      traceparent: r.traceparent,
    }));
  }

  /** Epoch ms of the earliest unsent outbox row, or null: lets the relay sleep exactly that long. */
  nextOutboxAt(): number | null {
    return this.#stmts.nextAvailable.get({})?.at ?? null;
  }

  /** Records acknowledged publishes, with the stream sequence each one got. */
  markOutboxSent(sent: readonly { readonly id: number; readonly seq: number }[]): void {
    const now = this.#now().toISOString();
    this.events.transaction(() => {
      for (const { id, seq } of sent) this.#stmts.outboxSent.run({ id, now, seq });
    });
  }

  /**
   * Adds a fresh outbox row for a video's current dispatch, under a new message id (so that
   * JetStream's dedupe window does not swallow it): the reconciler's answer to a lost message.
   */
  republish(videoId: string, dispatch: number, lane: Lane, msgId: string): void {
    const now = this.#now();
    this.#stmts.outboxInsert.run({
      video_id: videoId,
      dispatch,
      lane,
      msg_id: msgId,
      available_at: now.getTime(),
      created_at: now.toISOString(),
      traceparent: this.#firstTrace(videoId),
    });
  }

  #firstTrace(videoId: string): string | null {
    return this.#stmts.firstTrace.get({ video_id: videoId })?.traceparent ?? null;
  }

  /**
   * Videos that should have a job message in NATS (waiting or running), each with its newest
   * outbox row for the current dispatch: what the reconciler checks against the stream.
   */
  async inFlight(): Promise<InFlightVideo[]> {
    const rows = await this.#db.kysely
      .selectFrom("videos as v")
      .leftJoin("outbox as o", (j) => j.onRef("o.video_id", "=", "v.id").onRef("o.dispatch", "=", "v.dispatch"))
      .select(["v.id", "v.state", "v.lane", "v.dispatch", "v.not_before", "o.id as outbox_id", "o.sent_at", "o.stream_seq", "o.last_error"])
      .where("v.state", "in", ["queued", "retrying", "running"])
      .orderBy("v.id")
      .orderBy("o.id", "desc")
      .execute();
    const out: InFlightVideo[] = [];
    for (const r of rows) {
      const last = out[out.length - 1];
      if (last && last.videoId === r.id) continue; // keep the newest outbox row per video
      out.push({
        videoId: r.id,
        state: r.state as VideoState,
        lane: r.lane as Lane,
        dispatch: r.dispatch,
        outbox: r.outbox_id === null ? null : { id: r.outbox_id, sentAt: r.sent_at, streamSeq: r.stream_seq, superseded: r.last_error === "superseded" },
      });
    }
    return out;
  }

  markOutboxFailed(id: number, error: string): void {
    this.#stmts.outboxFailed.run({ id, error });
  }

  /**
   * Replays the whole log into a fresh `videos` table, in one transaction. The outbox is
   * operational state, not a projection of history, and is left alone.
   */
  rebuildProjections(): { videos: number; events: number } {
    return this.events.transaction(() => {
      this.#db.raw.prepare("DELETE FROM videos").run();
      const states = new Map<string, Video>();
      let after = 0;
      let count = 0;
      for (;;) {
        const page = this.events.readAll(after, 5000);
        if (page.length === 0) break;
        for (const e of page) {
          const prev = states.get(e.streamId) ?? null;
          states.set(e.streamId, evolve(e.streamId, prev, { type: e.type, data: e.data } as VideoEvent));
          after = e.position;
          count++;
        }
      }
      for (const v of states.values()) this.#stmts.insert.run(videoToRow(v));
      return { videos: states.size, events: count };
    });
  }
}

/** The NATS message id of a job: JetStream drops a second publish of the same dispatch. */
export const jobMessageId = (videoId: string, dispatch: number): string => `${videoId}.${dispatch}`;

/** The reconciler's replacement for a lost message: same dispatch, a message id never used before. */
export const recoveryMessageId = (videoId: string, dispatch: number, now = Date.now()): string => `${videoId}.${dispatch}.r${now}`;
export const isRecoveryMessageId = (msgId: string): boolean => /\.r\d+$/.test(msgId);

/** The traceparent an enqueue command carries in its metadata (set by telemetry), or null. */
function traceparentOf(metadata: Readonly<Record<string, unknown>> | undefined): string | null {
  const t = metadata?.traceparent;
  return typeof t === "string" && t.length <= 256 ? t : null;
}

const isRefusal = (error: unknown): error is Error => isDomainError(error) || isConcurrencyError(error);
