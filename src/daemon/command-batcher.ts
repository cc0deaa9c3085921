import type { BatchItemResult, CommandItem, VideoStore } from "../store/index.js";

/**
 * Group commit. Commands submitted in the same turn of the event loop (from every worker, the
 * API and the relay) run in one SQLite transaction: one commit for the lot instead of one each.
 * Each caller gets its own result; a refused command does not affect the others.
 */
export class CommandBatcher {
  readonly #store: VideoStore;
  readonly #onCommitted: (results: readonly BatchItemResult[]) => void;
  #pending: { item: CommandItem; resolve: (r: BatchItemResult) => void; reject: (e: unknown) => void }[] = [];
  #scheduled = false;

  constructor(store: VideoStore, onCommitted: (results: readonly BatchItemResult[]) => void = () => {}) {
    this.#store = store;
    this.#onCommitted = onCommitted;
  }

  submit(item: CommandItem): Promise<BatchItemResult> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /** Runs a batch the caller already has (an enqueue of many files) through the same hook. */
  executeMany(items: readonly CommandItem[]): BatchItemResult[] {
    const results = this.#store.executeMany(items);
    this.#notify(results);
    return results;
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0) return;
    let results: BatchItemResult[];
    try {
      results = this.#store.executeMany(batch.map((b) => b.item));
    } catch (err) {
      for (const b of batch) b.reject(err);
      return;
    }
    batch.forEach((b, i) => b.resolve(results[i] as BatchItemResult));
    this.#notify(results);
  }

  #notify(results: readonly BatchItemResult[]): void {
    try {
      this.#onCommitted(results);
    } catch {
      // Post-commit hooks (event publishing, metrics) must never undo or fail a stored result.
    }
  }
}
