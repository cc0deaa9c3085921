import type { Generated } from "kysely";

/** Table types for Kysely. JSON columns hold text; the mapping lives in video-rows.ts. */
export interface EventsTable {
  position: Generated<number>;
  event_id: string;
  stream_id: string;
  stream_version: number;
  type: string;
  data: string;
  metadata: string;
  recorded_at: string;
}

export interface VideosTable {
  id: string;
  version: number;
  state: string;
  lane: string;
  pipeline: string;
  path: string;
  attempts: number;
  max_attempts: number;
  dispatch: number;
  current_step: string | null;
  steps: string;
  completed_steps: string;
  last_error: string | null;
  metadata: string;
  not_before: string | null;
  enqueued_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface OutboxTable {
  id: Generated<number>;
  video_id: string;
  dispatch: number;
  lane: string;
  msg_id: string;
  /** Epoch milliseconds: a retry waits here until its backoff is over. */
  available_at: number;
  created_at: string;
  sent_at: string | null;
  /** JetStream sequence the publish got: lets the reconciler ask whether NATS still holds it. */
  stream_seq: number | null;
  publish_attempts: Generated<number>;
  last_error: string | null;
  /** W3C traceparent of the video's enqueue (migration 0003): the job message carries it. */
  traceparent: Generated<string | null>;
}

export interface Schema {
  events: EventsTable;
  videos: VideosTable;
  outbox: OutboxTable;
}
