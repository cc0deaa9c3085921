import type { Logger } from "../shared/logger.js";
import type { TelemetrySettings } from "./settings.js";
import { isValidUnsampled, traceparentOf, unsampled } from "./trace-context.js";
import type { Attributes, AttributeValue, CommittedResult, Observe, Outcome, ParentRef, SpanKindName, SpanOptions, Telemetry, TraceSpan } from "./types.js";

const isSpan = (ref: NonNullable<ParentRef>): ref is TraceSpan => typeof (ref as TraceSpan).traceparent === "function";

/** A metric instrument as the facade uses it (the SDK's, or a no-op). */
export interface Instrument {
  add(value: number, attributes?: Attributes): void;
  record(value: number, attributes?: Attributes): void;
}

/** Called by spans when they end slower than the threshold. */
export interface SpanSink {
  readonly slowMs: number;
  slow(operation: string, durationMs: number, traceId: string): void;
}

/** What the SDK module provides (see sdk.ts); absent when nothing is exported. */
export interface Backend {
  startSpan(name: string, kind: SpanKindName, options: SpanOptions, sink: SpanSink): TraceSpan;
  counter(name: string, description: string, unit: string): Instrument;
  histogram(name: string, description: string, unit: string, boundaries: readonly number[]): Instrument;
  gauge(name: string, description: string, unit: string): Instrument;
  /** true: a counter (cumulative totals); "updown": an up-down counter; false: a gauge. */
  observe(name: string, description: string, unit: string, callback: Observe, monotonic: boolean | "updown"): void;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** Seconds. Job and step durations reach hours (long transcodes). */
export const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800];
/** Seconds. A group commit takes tens of microseconds to tens of milliseconds. */
export const APPEND_BUCKETS_S = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Seconds from an outbox row being due to its publish being acknowledged. */
export const LAG_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** One slow-operation log line per operation name per window; the rest are counted and summarised. */
const SLOW_LOG_WINDOW_MS = 10_000;

const NOOP_INSTRUMENT: Instrument = { add() {}, record() {} };

export const NOOP_SPAN: TraceSpan = Object.freeze({
  traceId: "",
  recording: false,
  setAttribute() {},
  fail() {},
  end() {},
  traceparent: () => undefined,
  inject() {},
});

const NEVER_SLOW: SpanSink = { slowMs: Number.POSITIVE_INFINITY, slow() {} };

/** Times an operation for the slow-operation log when nothing is exported. */
/**
 * A span that is not recorded: timed for the slow-operation log, and, under an unsampled
 * context, carrying that context on (to message headers, to the store) so that no process
 * downstream records anything of it either. No SDK object is made: an untraced job costs a
 * couple of `performance.now()` calls per span.
 */
class LocalSpan implements TraceSpan {
  readonly traceId = "";
  readonly recording = false;
  readonly #start: number;
  readonly #op: string;
  readonly #sink: SpanSink;
  readonly #traceparent: string | undefined;
  #ended = false;

  constructor(op: string, sink: SpanSink, traceparent?: string) {
    this.#op = op;
    this.#sink = sink;
    this.#traceparent = traceparent;
    this.#start = sink === NEVER_SLOW ? 0 : performance.now();
  }

  /** The unsampled context this span carries on, if any. */
  get carried(): string | undefined {
    return this.#traceparent;
  }

  setAttribute(): void {}
  fail(): void {}
  traceparent(): string | undefined {
    return this.#traceparent;
  }
  inject(headers: { set(key: string, value: string): void }): void {
    if (this.#traceparent) headers.set("traceparent", this.#traceparent);
  }
  end(): void {
    if (this.#ended || this.#sink === NEVER_SLOW) return;
    this.#ended = true;
    const ms = performance.now() - this.#start;
    if (ms > this.#sink.slowMs) this.#sink.slow(this.#op, ms, "");
  }
}

interface Instruments {
  readonly jobDuration: Instrument;
  readonly stepDuration: Instrument;
  readonly storeAppend: Instrument;
  readonly outboxLag: Instrument;
  readonly slowOperations: Instrument;
  readonly alerts: Instrument;
  readonly memory: Instrument;
}

/**
 * The Telemetry every component gets. Spans go to the SDK backend when there is one; the
 * slow-operation log works without it. Attribute objects for metrics are cached per label set,
 * so recording allocates nothing once warm.
 */
export class VqTelemetry implements Telemetry, SpanSink {
  readonly mode: "off" | "local" | "export";
  readonly slowMs: number;
  readonly #log: Logger;
  readonly #backend: Backend | undefined;
  readonly #i: Instruments;
  readonly #attrs = new Map<string, Attributes>();
  readonly #inFlight = new Map<string, number>();
  readonly #completed = new Map<string, number>();
  readonly #failed = new Map<string, number>();
  readonly #deadLettered = new Map<string, number>();
  readonly #slowLog = new Map<string, { at: number; suppressed: number }>();
  #shutdown?: Promise<void>;

  readonly #jobBudget: number;
  #jobWindow = 0;
  #jobsInWindow = 0;

  constructor(settings: Pick<TelemetrySettings, "mode" | "slowOperationMs"> & { tracedJobsPerSecond?: number }, logger: Logger, backend?: Backend) {
    this.mode = settings.mode;
    this.slowMs = settings.slowOperationMs;
    this.#jobBudget = settings.tracedJobsPerSecond ?? 0;
    this.#log = logger;
    this.#backend = backend;
    const b = backend;
    const c = (name: string, description: string, unit: string) => (b ? b.counter(name, description, unit) : NOOP_INSTRUMENT);
    const h = (name: string, description: string, unit: string, buckets: readonly number[]) => (b ? b.histogram(name, description, unit, buckets) : NOOP_INSTRUMENT);
    // Per-job counts are kept here and read at each collection: an SDK add() hashes the
    // attributes and looks up their storage every time, for every job.
    if (b) {
      const tally =
        (counts: Map<string, number>, key: string): Observe =>
        (record) => {
          for (const [value, n] of counts) record(n, this.#labels(key, value));
        };
      b.observe("vq.jobs.in_flight", "Jobs being worked on right now, by lane", "{job}", tally(this.#inFlight, "vq.lane"), "updown");
      b.observe("vq.jobs.completed", "Videos completed, by pipeline", "{job}", tally(this.#completed, "vq.pipeline"), true);
      b.observe("vq.jobs.failed", "Failed attempts, by pipeline", "{job}", tally(this.#failed, "vq.pipeline"), true);
      b.observe("vq.jobs.dead_lettered", "Videos dead-lettered, by pipeline", "{job}", tally(this.#deadLettered, "vq.pipeline"), true);
    }
    this.#i = {
      jobDuration: h("vq.job.duration", "Duration of one attempt at a job, by pipeline and outcome", "s", DURATION_BUCKETS_S),
      stepDuration: h("vq.step.duration", "Duration of one pipeline step, by pipeline, step and outcome", "s", DURATION_BUCKETS_S),
      storeAppend: h("vq.store.append.duration", "Event-store append latency: one group-commit transaction", "s", APPEND_BUCKETS_S),
      outboxLag: h("vq.outbox.lag", "Time from an outbox row being due to its publish being acknowledged", "s", LAG_BUCKETS_S),
      slowOperations: c("vq.slow_operations", "Operations slower than telemetry.slowOperationMs, by operation", "{operation}"),
      alerts: c("vq.alerts", "Alerts raised and cleared, by kind and state", "{alert}"),
      memory: b ? b.gauge("vq.memory.snapshot", "Figures of the latest memory snapshot, by field", "By") : NOOP_INSTRUMENT,
    };
  }

  span(name: string, options: SpanOptions = {}): TraceSpan {
    if (this.mode === "off") return NOOP_SPAN;
    const sink = options.slow === false ? NEVER_SLOW : this;
    const op = options.operation ?? name;
    const parent = options.parent;
    // Nothing under a span that is not recorded is recorded: only timed, the context carried on.
    if (parent instanceof LocalSpan) return new LocalSpan(op, sink, parent.carried);
    if (parent === NOOP_SPAN) return new LocalSpan(op, sink);
    if (!this.#backend) return options.slow === false ? NOOP_SPAN : new LocalSpan(op, sink);
    const remote = typeof parent === "string" ? parent : parent && !isSpan(parent) ? traceparentOf(parent) : undefined;
    if (options.record === false) return new LocalSpan(op, sink, remote === undefined ? undefined : unsampled(remote));
    // An unsampled context from elsewhere (a job past telemetry.tracedJobsPerSecond, a sampler's
    // "no"): nothing to record, so no SDK span either.
    if (remote !== undefined && isValidUnsampled(remote)) return new LocalSpan(op, sink, remote);
    return this.#backend.startSpan(name, options.kind ?? "internal", options, sink);
  }

  admitJob(): boolean {
    if (!this.#backend) return false;
    if (this.#jobBudget === 0) return true;
    const now = Date.now();
    if (now - this.#jobWindow >= 1000) {
      this.#jobWindow = now;
      this.#jobsInWindow = 0;
    }
    return ++this.#jobsInWindow <= this.#jobBudget;
  }

  async run<T>(name: string, options: SpanOptions, fn: (span: TraceSpan) => Promise<T> | T): Promise<T> {
    const span = this.span(name, options);
    try {
      return await fn(span);
    } catch (err) {
      span.fail(err);
      throw err;
    } finally {
      span.end();
    }
  }

  /** SpanSink: a slow operation is logged (at most once per name per window) and always counted. */
  slow(operation: string, durationMs: number, traceId: string): void {
    this.#i.slowOperations.add(1, this.#labels("vq.operation", operation));
    const now = Date.now();
    const seen = this.#slowLog.get(operation);
    if (seen && now - seen.at < SLOW_LOG_WINDOW_MS) {
      seen.suppressed++;
      return;
    }
    const suppressed = seen?.suppressed ?? 0;
    this.#slowLog.set(operation, { at: now, suppressed: 0 });
    const fields: Record<string, unknown> = { operation, durationMs: Math.round(durationMs * 1000) / 1000, thresholdMs: this.slowMs };
    if (traceId) fields.traceId = traceId;
    if (suppressed > 0) fields.moreSinceLastLog = suppressed;
    this.#log.warn(fields, `slow operation: ${operation} took ${Math.round(durationMs)} ms`);
  }

  jobStarted(lane: string): void {
    if (this.#backend) bump(this.#inFlight, lane, 1);
  }

  jobFinished(lane: string, pipeline: string, outcome: Outcome, seconds: number): void {
    if (this.#backend) bump(this.#inFlight, lane, -1);
    this.#i.jobDuration.record(seconds, this.#labels2("vq.pipeline", pipeline, "vq.outcome", outcome));
  }

  stepFinished(pipeline: string, step: string, outcome: Outcome, seconds: number): void {
    const key = `s\u0000${pipeline}\u0000${step}\u0000${outcome}`;
    let a = this.#attrs.get(key);
    if (!a) {
      a = Object.freeze({ "vq.pipeline": pipeline, "vq.step": step, "vq.outcome": outcome });
      this.#attrs.set(key, a);
    }
    this.#i.stepDuration.record(seconds, a);
  }

  committed(results: readonly CommittedResult[]): void {
    if (!this.#backend) return;
    for (const r of results) {
      if (!r.ok || !r.events || !r.video) continue;
      for (const e of r.events) {
        const counts = e.type === "VideoCompleted" ? this.#completed : e.type === "AttemptFailed" ? this.#failed : e.type === "VideoDeadLettered" ? this.#deadLettered : undefined;
        if (counts) bump(counts, r.video.pipeline, 1);
      }
    }
  }

  storeAppended(seconds: number, _commands: number): void {
    this.#i.storeAppend.record(seconds);
  }

  outboxPublished(count: number, lagMs: number): void {
    if (count > 0) this.#i.outboxLag.record(Math.max(0, lagMs) / 1000);
  }

  alert(kind: string, state: "raised" | "cleared"): void {
    this.#i.alerts.add(1, this.#labels2("vq.alert", kind, "vq.alert.state", state));
  }

  memorySnapshot(values: Readonly<Record<string, number>>): void {
    for (const [field, v] of Object.entries(values)) this.#i.memory.record(v, this.#labels("vq.memory.field", field));
  }

  observe(name: string, description: string, unit: string, callback: Observe, monotonic: boolean | "updown" = false): void {
    this.#backend?.observe(name, description, unit, callback, monotonic);
  }

  async flush(timeoutMs = 5000): Promise<void> {
    if (this.#backend) await bounded(this.#backend.flush(), timeoutMs);
  }

  shutdown(timeoutMs = 5000): Promise<void> {
    this.#shutdown ??= this.#backend ? bounded(this.#backend.shutdown(), timeoutMs) : Promise.resolve();
    return this.#shutdown;
  }

  #labels(key: string, value: AttributeValue): Attributes {
    const k = `${key}\u0000${value}`;
    let a = this.#attrs.get(k);
    if (!a) {
      a = Object.freeze({ [key]: value });
      this.#attrs.set(k, a);
    }
    return a;
  }

  #labels2(k1: string, v1: AttributeValue, k2: string, v2: AttributeValue): Attributes {
    const k = `${k1}\u0000${v1}\u0000${k2}\u0000${v2}`;
    let a = this.#attrs.get(k);
    if (!a) {
      a = Object.freeze({ [k1]: v1, [k2]: v2 });
      this.#attrs.set(k, a);
    }
    return a;
  }
}

function bump(counts: Map<string, number>, key: string, by: number): void {
  counts.set(key, (counts.get(key) ?? 0) + by);
}

/**
 * Waits for p, but not longer than ms; never rejects. The timer is not unref'd: it keeps a
 * process that has nothing else left (the CLI at exit) alive until the export is done or the
 * time is up, whichever comes first.
 */
async function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
