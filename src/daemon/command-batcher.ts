import type BetterSqlite3 from "better-sqlite3";
import type { BatchItemResult, CommandItem, VideoStore } from "../store/index.js";
import { isSampled, noopTelemetry, type Telemetry } from "../telemetry/index.js";

/** A commit span links at most this many of the spans whose commands it carries. */
const MAX_LINKS = 32;

/** A window commits early once it holds this many commands (bounds the work a crash can undo). */
const MAX_WINDOW_COMMANDS = 1000;

/** A command run now inside the open write transaction: its outcome, and when it is on disk. */
export interface Submitted {
  readonly result: BatchItemResult;
  /** Resolves once the transaction holding the command has committed; rejects if it was rolled back. */
  readonly durable: Promise<void>;
}

interface Window {
  readonly items: CommandItem[];
  readonly results: BatchItemResult[];
  /** Time spent running the window's commands, in ms (the commit adds its own). */
  execMs: number;
  readonly durable: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Group commit with write-behind. A command runs at once inside a write transaction that stays
 * open until the end of the current turn of the event loop, then commits: every command
 * submitted in that turn (from every worker, the API, the relay) shares one commit.
 *
 * The caller gets the outcome at once and a `durable` promise for the commit. What leaves the
 * process waits for it: a job message is acked, an API reply sent, a domain event published only
 * once its commit is done. What stays inside may go ahead: a worker starts a step as soon as the
 * attempt is decided, and a crash before the commit loses the attempt and the step's result
 * together (the unacked message is delivered again). With a no-op pipeline this turns about three
 * commits per turn into one per turn for everything the workers got through, which is what makes
 * durable jobs cheap.
 *
 * A refused command records nothing and does not affect the others. An error that is not a
 * refusal (I/O, a broken projection) rolls the whole window back: every command in it is
 * reported not durable, and its callers hand their jobs back rather than ack them.
 */
export class CommandBatcher {
  readonly #store: VideoStore;
  readonly #onCommitted: (results: readonly BatchItemResult[]) => void;
  readonly #tel: Telemetry;
  readonly #sql: { begin: BetterSqlite3.Statement; commit: BetterSqlite3.Statement; rollback: BetterSqlite3.Statement };
  readonly #raw: BetterSqlite3.Database;
  #window: Window | null = null;

  /** With telemetry, each commit is one span (`vq.store.append`) and one latency sample. */
  constructor(store: VideoStore, onCommitted: (results: readonly BatchItemResult[]) => void = () => {}, telemetry: Telemetry = noopTelemetry) {
    this.#store = store;
    this.#onCommitted = onCommitted;
    this.#tel = telemetry;
    this.#raw = store.database.raw;
    this.#sql = { begin: this.#raw.prepare("BEGIN IMMEDIATE"), commit: this.#raw.prepare("COMMIT"), rollback: this.#raw.prepare("ROLLBACK") };
  }

  /** Runs the command now; the outcome is visible to later commands at once and durable with `durable`. */
  run(item: CommandItem): Submitted {
    return this.#runAll([item])[0] as Submitted;
  }

  /** Runs the command and resolves once it is committed. */
  async submit(item: CommandItem): Promise<BatchItemResult> {
    const s = this.run(item);
    await s.durable;
    return s.result;
  }

  /** Runs a batch the caller already has (an enqueue of many files); resolves once committed. */
  async executeMany(items: readonly CommandItem[]): Promise<BatchItemResult[]> {
    if (items.length === 0) return [];
    const submitted = this.#runAll(items);
    await submitted[0]?.durable;
    return submitted.map((s) => s.result);
  }

  /** Commits the open window now (shutdown, tests). */
  flush(): void {
    const w = this.#window;
    if (!w) return;
    this.#window = null;
    const span = this.#span(w.items);
    const t0 = performance.now();
    try {
      this.#sql.commit.run();
    } catch (err) {
      span.fail(err);
      span.end();
      this.#rollback(w, err);
      return;
    }
    span.end();
    this.#tel.storeAppended((w.execMs + performance.now() - t0) / 1000, w.items.length);
    w.resolve();
    try {
      this.#onCommitted(w.results);
    } catch {
      // Post-commit hooks (event publishing, metrics) must never undo or fail a stored result.
    }
  }

  #runAll(items: readonly CommandItem[]): Submitted[] {
    const w = this.#open();
    const t0 = performance.now();
    let results: BatchItemResult[];
    try {
      results = this.#store.executeMany(items);
    } catch (err) {
      this.#window = null;
      this.#rollback(w, err);
      throw err;
    }
    w.execMs += performance.now() - t0;
    for (let i = 0; i < items.length; i++) {
      w.items.push(items[i] as CommandItem);
      w.results.push(results[i] as BatchItemResult);
    }
    if (w.items.length >= MAX_WINDOW_COMMANDS) this.flush();
    return results.map((result) => ({ result, durable: w.durable }));
  }

  #open(): Window {
    if (this.#window) return this.#window;
    if (this.#raw.inTransaction) throw new Error("CommandBatcher: a write transaction is already open on this connection outside the batcher");
    this.#sql.begin.run();
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const durable = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Callers that only await the outcome must not turn a rollback into an unhandled rejection.
    durable.catch(() => undefined);
    const w: Window = { items: [], results: [], execMs: 0, durable, resolve, reject };
    this.#window = w;
    setImmediate(() => {
      if (this.#window === w) this.flush();
    });
    return w;
  }

  #rollback(w: Window, err: unknown): void {
    try {
      if (this.#raw.inTransaction) this.#sql.rollback.run();
    } catch {
      // The connection already rolled back (SQLite does on some I/O errors).
    }
    w.reject(new WindowRolledBackError(err));
  }

  #span(items: readonly CommandItem[]) {
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
    // A commit for one traced request is part of its trace; one shared by many links them;
    // one carrying nothing sampled is only timed (slow-operation log), not recorded.
    return this.#tel.span("vq.store.append", {
      record: parent !== undefined,
      parent: links ? undefined : parent,
      links,
      attributes: { "db.system.name": "sqlite", "db.operation.name": "append", "vq.commands": items.length },
    });
  }
}

/** The commands of a window were rolled back together because one of them (or the commit) failed. */
export class WindowRolledBackError extends Error {
  constructor(cause: unknown) {
    super(`the store rolled back a group of commands: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = "WindowRolledBackError";
  }
}
