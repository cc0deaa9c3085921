export { openDatabase, type Database, type DatabaseOptions, type Synchronous } from "./database.js";
export { ConcurrencyError, StoreError, isConcurrencyError, isStoreError } from "./errors.js";
export { param, prepare, type Prepared } from "./prepared.js";
export type { Schema } from "./schema.js";
export {
  SqliteEventStore,
  type AppendResult,
  type EventStore,
  type ExpectedVersion,
  type NewEvent,
  type StoredEvent,
} from "./sqlite-event-store.js";
export {
  VideoStore,
  jobMessageId,
  recoveryMessageId,
  isRecoveryMessageId,
  type BatchItemResult,
  type CommandItem,
  type CommandResult,
  type InFlightVideo,
  type ListQuery,
  type OutboxEntry,
  type Projection,
  type StateCounts,
} from "./video-store.js";
