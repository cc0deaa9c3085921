/** Optimistic concurrency: another writer appended to the stream first. */
export class ConcurrencyError extends Error {
  readonly streamId: string;
  readonly expectedVersion: number;
  readonly currentVersion: number;
  constructor(streamId: string, expectedVersion: number, currentVersion: number) {
    super(`concurrency conflict on stream ${streamId}: expected version ${expectedVersion}, current version is ${currentVersion}`);
    this.name = "ConcurrencyError";
    this.streamId = streamId;
    this.expectedVersion = expectedVersion;
    this.currentVersion = currentVersion;
  }
}

/** The database could not be opened, migrated or read. */
export class StoreError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreError";
  }
}

export const isConcurrencyError = (e: unknown): e is ConcurrencyError => e instanceof ConcurrencyError;
export const isStoreError = (e: unknown): e is StoreError => e instanceof StoreError;
