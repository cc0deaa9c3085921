import type { BatchItemResult, CommandItem, VideoStore } from "../store/index.js";
import { isSampled, noopTelemetry, type Telemetry, type TraceSpan } from "../telemetry/index.js";

/** A commit span links at most this many of the spans whose commands it carries. */
const MAX_LINKS = 32;

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
  readonly #tel: Telemetry;

  /** With telemetry, each transaction is one span (`vq.store.append`) and one latency sample. */
  constructor(store: VideoStore, onCommitted: (results: readonly BatchItemResult[]) => void = () => {}, telemetry: Telemetry = noopTelemetry) {
    this.#store = store;
    this.#onCommitted = onCommitted;
    this.#tel = telemetry;
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
    const results = this.#execute(items);
    this.#notify(results);
    return results;
  }

  /** One transaction, timed, in a span that hangs under (or links) the spans of its commands. */
  #execute(items: readonly CommandItem[]): BatchItemResult[] {
    const span = this.#span(items);
    const t0 = performance.now();
    try {
      const results = this.#store.executeMany(items);
      this.#tel.storeAppended((performance.now() - t0) / 1000, items.length);
      return results;
    } catch (err) {
      span.fail(err);
      throw err;
    } finally {
      span.end();
    }
  }

  #span(items: readonly CommandItem[]): TraceSpan {
    if (this.#tel.mode === "off") return this.#tel.span("");
    let parent: string | undefined;
    let links: string[] | undefined;
    for (const item of items) {
      const t = item.trace ?? (typeof item.metadata?.traceparent === "string" ? item.metadata.traceparent : undefined);
      if (t === undefined || t === parent || !isSampled(t)) continue;
      if (parent === undefined) parent = t;
      else if (!links) links = [parent, t];
      else if (links.length < MAX_LINKS && !links.includes(t)) links.push(t);
    }
    // A transaction for one traced request is part of its trace; one shared by many links them;
    // one carrying nothing sampled is only timed (slow-operation log), not recorded.
    return this.#tel.span("vq.store.append", {
      record: parent !== undefined,
      parent: links ? undefined : parent,
      links,
      attributes: { "db.system.name": "sqlite", "db.operation.name": "append", "vq.commands": items.length },
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0) return;
    let results: BatchItemResult[];
    try {
      results = this.#execute(batch.map((b) => b.item));
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
