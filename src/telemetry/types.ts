/**
 * The telemetry surface the rest of vqd sees. One `Telemetry` is made at startup and passed in;
 * when telemetry is off it is a no-op, so call sites never branch on whether it is on.
 *
 * Context is passed explicitly (a span, a `traceparent` string or message headers as the parent)
 * rather than through an async context manager: no AsyncLocalStorage on the hot path.
 */

export type AttributeValue = string | number | boolean;
export type Attributes = Readonly<Record<string, AttributeValue | undefined>>;

export type SpanKindName = "internal" | "server" | "client" | "producer" | "consumer";

/** W3C trace context headers (`traceparent`, `tracestate`), as carried by NATS messages. */
export type TraceHeaders = Readonly<Record<string, string>>;

export interface TraceSpan {
  /** 32 hex digits while a trace is being recorded or propagated; "" otherwise. */
  readonly traceId: string;
  /** True when the span is sampled and will be exported. */
  readonly recording: boolean;
  setAttribute(key: string, value: AttributeValue): void;
  /** Marks the span failed (status ERROR, exception event). */
  fail(error: unknown): void;
  /** Ends the span; an operation slower than telemetry.slowOperationMs is logged and counted. Idempotent. */
  end(): void;
  /** `00-<trace id>-<span id>-<flags>` for this span, or undefined when nothing is traced. */
  traceparent(): string | undefined;
  /** Adds this span's context to outgoing message headers (nothing when nothing is traced). */
  inject(headers: { set(key: string, value: string): void }): void;
}

/** Where a span hangs: a span of this process, a `traceparent` string, or received headers. */
export type ParentRef = TraceSpan | string | TraceHeaders | null | undefined;

export interface SpanOptions {
  readonly kind?: SpanKindName;
  readonly parent?: ParentRef;
  readonly attributes?: Attributes;
  /** Related contexts (a batch span links the commands it carries). */
  readonly links?: readonly ParentRef[];
  /** Name used for the slow-operation log and counter (default: the span name). */
  readonly operation?: string;
  /** false: not an operation of its own for the slow-operation log (a per-message span inside a timed batch). */
  readonly slow?: boolean;
  /** false: only timed for the slow-operation log, never recorded (a batch span with nothing sampled to link). */
  readonly record?: boolean;
}

/** Outcome label of a job or step in metrics. */
export type Outcome = "completed" | "failed" | "dropped" | "stopped";

export interface CommittedEvent {
  readonly type: string;
}

export interface CommittedResult {
  readonly ok: boolean;
  readonly video?: { readonly pipeline: string };
  readonly events?: readonly CommittedEvent[];
}

/** A value source read when metrics are collected (never on the hot path). */
export type Observe = (record: (value: number, attributes?: Attributes) => void) => void;

export interface Telemetry {
  /** "off": nothing at all; "local": slow-operation log and alerts, nothing exported; "export": the OpenTelemetry SDK runs. */
  readonly mode: "off" | "local" | "export";
  /** Starts a span; `end()` it. */
  span(name: string, options?: SpanOptions): TraceSpan;
  /**
   * Whether one more job may be traced now (telemetry.tracedJobsPerSecond). A job that may not
   * is sent with an unsampled context, so that no process downstream records its spans.
   */
  admitJob(): boolean;
  /** Runs fn inside a span that ends when fn settles (failed when it throws). */
  run<T>(name: string, options: SpanOptions, fn: (span: TraceSpan) => Promise<T> | T): Promise<T>;

  // -- metrics, all cheap enough for the hot path (a few hundred ns each when exporting)
  jobStarted(lane: string): void;
  jobFinished(lane: string, pipeline: string, outcome: Outcome, seconds: number): void;
  stepFinished(pipeline: string, step: string, outcome: Outcome, seconds: number): void;
  /** Counters fed from a committed batch: jobs completed / failed / dead-lettered by pipeline. */
  committed(results: readonly CommittedResult[]): void;
  storeAppended(seconds: number, commands: number): void;
  outboxPublished(count: number, lagMs: number): void;
  alert(kind: string, state: "raised" | "cleared"): void;
  /** Records a memory snapshot's figures as gauges. */
  memorySnapshot(values: Readonly<Record<string, number>>): void;

  /** Registers an observable gauge (or counter, for monotonic totals) read at each collection. */
  observe(name: string, description: string, unit: string, callback: Observe, monotonic?: boolean | "updown"): void;

  /** Exports what is pending. Never throws; gives up after timeoutMs. */
  flush(timeoutMs?: number): Promise<void>;
  /** Flushes and stops exporting. Never throws; gives up after timeoutMs. Idempotent. */
  shutdown(timeoutMs?: number): Promise<void>;
}
