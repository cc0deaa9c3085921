import { newEventId } from "../shared/ids.js";
import type { Database } from "./database.js";
import { ConcurrencyError } from "./errors.js";
import { param, prepare } from "./prepared.js";

export interface NewEvent {
  readonly type: string;
  readonly data: unknown;
  /** Supply to make the append idempotent: an event id already stored is not stored again. */
  readonly eventId?: string;
  readonly metadata?: Readonly<Record<string, unknown>>;
}

export interface StoredEvent<T = unknown> {
  readonly position: number;
  readonly eventId: string;
  readonly streamId: string;
  readonly streamVersion: number;
  readonly type: string;
  readonly data: T;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly recordedAt: string;
}

export interface AppendResult {
  /** The stream's version after the append (the version to expect next time). */
  readonly nextExpectedVersion: number;
  readonly events: readonly StoredEvent[];
  /** True when every event id was already stored: nothing was written. */
  readonly duplicate: boolean;
}

/** Expected version: a number (0 = the stream must not exist yet) or "any". */
export type ExpectedVersion = number | "any";

/** An append-only log of events grouped in streams, with optimistic concurrency per stream. */
export interface EventStore {
  append(streamId: string, expectedVersion: ExpectedVersion, events: readonly NewEvent[]): AppendResult;
  readStream(streamId: string): StoredEvent[];
  readAll(afterPosition: number, limit: number): StoredEvent[];
  streamVersion(streamId: string): number;
  /** Runs fn in one write transaction (BEGIN IMMEDIATE); nested calls join the outer one. */
  transaction<T>(fn: () => T): T;
}

interface EventRow {
  position: number;
  event_id: string;
  stream_id: string;
  stream_version: number;
  type: string;
  data: string;
  metadata: string;
  recorded_at: string;
}

export const toStoredEvent = (r: EventRow): StoredEvent => ({
  position: r.position,
  eventId: r.event_id,
  streamId: r.stream_id,
  streamVersion: r.stream_version,
  type: r.type,
  data: JSON.parse(r.data) as unknown,
  metadata: JSON.parse(r.metadata) as Record<string, unknown>,
  recordedAt: r.recorded_at,
});

/** The event store on SQLite: Kysely-built statements, prepared once, run synchronously. */
export class SqliteEventStore implements EventStore {
  readonly #db: Database;
  readonly #now: () => Date;
  readonly #stmts;
  /** One wrapper for every transaction: better-sqlite3 builds a new one per call otherwise (~3 us). */
  readonly #tx;

  constructor(db: Database, options: { now?: () => Date } = {}) {
    this.#db = db;
    this.#tx = db.raw.transaction((fn: () => unknown) => fn());
    this.#now = options.now ?? (() => new Date());
    const k = db.kysely;
    const raw = db.raw;
    this.#stmts = {
      version: prepare<{ stream_version: number }, { streamId: string }>(
        raw,
        k.selectFrom("events").select("stream_version").where("stream_id", "=", param("streamId")).orderBy("stream_version", "desc").limit(1),
      ),
      insert: prepare<never, Omit<EventRow, "position">>(
        raw,
        k.insertInto("events").values({
          event_id: param("event_id"),
          stream_id: param("stream_id"),
          stream_version: param("stream_version"),
          type: param("type"),
          data: param("data"),
          metadata: param("metadata"),
          recorded_at: param("recorded_at"),
        }),
      ),
      byEventId: prepare<EventRow, { eventId: string }>(raw, k.selectFrom("events").selectAll().where("event_id", "=", param("eventId"))),
      stream: prepare<EventRow, { streamId: string }>(
        raw,
        k.selectFrom("events").selectAll().where("stream_id", "=", param("streamId")).orderBy("stream_version"),
      ),
      all: prepare<EventRow, { after: number; limit: number }>(
        raw,
        k.selectFrom("events").selectAll().where("position", ">", param("after")).orderBy("position").limit(param("limit")),
      ),
    };
  }

  transaction<T>(fn: () => T): T {
    if (this.#db.raw.inTransaction) return fn();
    return this.#tx.immediate(fn) as T;
  }

  streamVersion(streamId: string): number {
    return this.#stmts.version.get({ streamId })?.stream_version ?? 0;
  }

  append(streamId: string, expectedVersion: ExpectedVersion, events: readonly NewEvent[]): AppendResult {
    return this.transaction(() => this.appendInTransaction(streamId, expectedVersion, events));
  }

  /** append() for callers that already hold the transaction and know the stream's version. */
  appendInTransaction(streamId: string, expectedVersion: ExpectedVersion, events: readonly NewEvent[], knownVersion?: number): AppendResult {
    const firstId = events[0]?.eventId;
    if (firstId !== undefined) {
      const existing = this.#stmts.byEventId.get({ eventId: firstId });
      if (existing) return this.#replayedAppend(streamId, existing, events);
    }
    const current = knownVersion ?? this.streamVersion(streamId);
    if (expectedVersion !== "any" && expectedVersion !== current) {
      throw new ConcurrencyError(streamId, expectedVersion, current);
    }
    const recordedAt = this.#now().toISOString();
    const stored: StoredEvent[] = [];
    let version = current;
    for (const e of events) {
      version += 1;
      const eventId = e.eventId ?? newEventId();
      const data = JSON.stringify(e.data);
      const metadata = JSON.stringify(e.metadata ?? {});
      const info = this.#stmts.insert.run({
        event_id: eventId,
        stream_id: streamId,
        stream_version: version,
        type: e.type,
        data,
        metadata,
        recorded_at: recordedAt,
      });
      stored.push({
        position: Number(info.lastInsertRowid),
        eventId,
        streamId,
        streamVersion: version,
        type: e.type,
        data: e.data,
        metadata: e.metadata ?? {},
        recordedAt,
      });
    }
    return { nextExpectedVersion: version, events: stored, duplicate: false };
  }

  /** The first event id is already stored: the whole append happened before. */
  #replayedAppend(streamId: string, existing: EventRow, events: readonly NewEvent[]): AppendResult {
    if (existing.stream_id !== streamId) {
      throw new ConcurrencyError(streamId, -1, this.streamVersion(streamId));
    }
    const stored = this.readStream(streamId).filter((e) => events.some((n) => n.eventId === e.eventId));
    return { nextExpectedVersion: this.streamVersion(streamId), events: stored, duplicate: true };
  }

  readStream(streamId: string): StoredEvent[] {
    return this.#stmts.stream.all({ streamId }).map(toStoredEvent);
  }

  readAll(afterPosition: number, limit: number): StoredEvent[] {
    return this.#stmts.all.all({ after: afterPosition, limit }).map(toStoredEvent);
  }
}
