/**
 * The OpenTelemetry SDK, loaded (with `import()`) only when something is exported.
 *
 * It is assembled from the packages `@opentelemetry/sdk-node` itself composes (a tracer
 * provider with a batch span processor, a meter provider with a periodic reader, the OTLP
 * exporters) rather than through NodeSDK: NodeSDK imports every exporter and instrumentation
 * package up front (gRPC included), about 30 MB of resident memory more than this, which alone
 * would take the daemon past its 90 MB idle budget. Only the exporter of the chosen protocol
 * is imported here.
 *
 * Configured by the standard variables: OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]ENDPOINT, _HEADERS,
 * _TIMEOUT, _PROTOCOL, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG],
 * OTEL_BSP_*, OTEL_METRIC_EXPORT_INTERVAL/TIMEOUT, OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER
 * (otlp, console or none); the config file's telemetry.* keys fill in what they leave unset.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import {
  diag,
  DiagLogLevel,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type DiagLogger,
  type Link,
  type Meter,
  type Span,
  type SpanContext,
  type Tracer,
} from "@opentelemetry/api";
import { defaultResource, detectResources, hostDetector, processDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { ConsoleMetricExporter, MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from "@opentelemetry/sdk-metrics";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";
import type { Logger } from "../shared/logger.js";
import type { Backend, Instrument, SpanSink } from "./facade.js";
import { parseHeaders, positiveInt, type SignalSettings, type TelemetryRole, type TelemetrySettings } from "./settings.js";
import { formatTraceparent, parseTraceparent, traceparentOf } from "./trace-context.js";
import type { Attributes, AttributeValue, Observe, ParentRef, SpanKindName, SpanOptions, TraceSpan } from "./types.js";

const KINDS: Record<SpanKindName, SpanKind> = {
  internal: SpanKind.INTERNAL,
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  producer: SpanKind.PRODUCER,
  consumer: SpanKind.CONSUMER,
};

/**
 * How long one export may take unless OTEL_EXPORTER_OTLP_TIMEOUT says otherwise (the OTLP
 * default is 10 s). An export still in flight when the process stops holds its exit up by at most
 * this much, so it is shorter for services and shorter still for the CLI.
 */
const CLI_EXPORT_TIMEOUT_MS = 2000;
const SERVICE_EXPORT_TIMEOUT_MS = 5000;

class OtelSpan implements TraceSpan {
  readonly span: Span;
  readonly #start = performance.now();
  readonly #op: string;
  readonly #sink: SpanSink;
  #ended = false;

  constructor(span: Span, op: string, sink: SpanSink) {
    this.span = span;
    this.#op = op;
    this.#sink = sink;
  }

  get traceId(): string {
    return this.span.spanContext().traceId;
  }

  get recording(): boolean {
    return this.span.isRecording();
  }

  setAttribute(key: string, value: AttributeValue): void {
    this.span.setAttribute(key, value);
  }

  fail(error: unknown): void {
    const e = error instanceof Error ? error : new Error(String(error));
    this.span.recordException(e);
    this.span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.span.end();
    const ms = performance.now() - this.#start;
    if (ms > this.#sink.slowMs) this.#sink.slow(this.#op, ms, this.span.spanContext().traceId);
  }

  traceparent(): string {
    const c = this.span.spanContext();
    return formatTraceparent(c.traceId, c.spanId, c.traceFlags);
  }

  inject(headers: { set(key: string, value: string): void }): void {
    headers.set("traceparent", this.traceparent());
    const state = this.span.spanContext().traceState?.serialize();
    if (state) headers.set("tracestate", state);
  }
}

function spanContextOf(ref: ParentRef): SpanContext | undefined {
  if (!ref) return undefined;
  if (ref instanceof OtelSpan) return ref.span.spanContext();
  let value: string | undefined;
  if (typeof ref === "string") value = ref;
  else if (typeof (ref as TraceSpan).traceparent === "function") value = (ref as TraceSpan).traceparent();
  else value = traceparentOf(ref as Record<string, string>);
  const p = parseTraceparent(value);
  return p ? { traceId: p.traceId, spanId: p.spanId, traceFlags: p.flags, isRemote: true } : undefined;
}

function contextOf(ref: ParentRef): Context {
  const sc = spanContextOf(ref);
  return sc ? trace.setSpanContext(ROOT_CONTEXT, sc) : ROOT_CONTEXT;
}

function clean(attributes: Attributes | undefined): Record<string, AttributeValue> | undefined {
  if (!attributes) return undefined;
  const out: Record<string, AttributeValue> = {};
  for (const k in attributes) {
    const v = attributes[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** OpenTelemetry's own warnings (an export that failed...) as vqd log lines, once a minute at most per message. */
function diagLogger(log: Logger): DiagLogger {
  const last = new Map<string, number>();
  const emit = (level: "warn" | "debug", message: string, args: unknown[]) => {
    const key = message.slice(0, 80);
    const now = Date.now();
    if (level === "warn") {
      if (now - (last.get(key) ?? 0) < 60_000) return;
      last.set(key, now);
    }
    const detail = args.map((a) => (a instanceof Error ? a.message : typeof a === "string" ? a : safeJson(a))).join(" ");
    log[level]({ detail: detail || undefined }, `opentelemetry: ${message}`);
  };
  return {
    error: (m, ...a) => emit("warn", m, a),
    warn: (m, ...a) => emit("warn", m, a),
    info: (m, ...a) => emit("debug", m, a),
    debug: () => {},
    verbose: () => {},
  };
}

const optional = <K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> => (value === undefined ? {} : ({ [key]: value } as Record<K, number>));

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** Exporter options from the resolved settings: nothing is left for the exporter to read from process.env. */
function exporterOptions(s: SignalSettings, role: TelemetryRole) {
  const timeoutMillis = role === "cli" ? Math.min(s.timeoutMs ?? CLI_EXPORT_TIMEOUT_MS, CLI_EXPORT_TIMEOUT_MS) : (s.timeoutMs ?? SERVICE_EXPORT_TIMEOUT_MS);
  return {
    url: s.url,
    ...(s.protocol !== "grpc" && Object.keys(s.headers).length > 0 ? { headers: { ...s.headers } } : {}),
    ...(timeoutMillis ? { timeoutMillis } : {}),
    ...(s.protocol !== "grpc" ? { httpAgentOptions: unrefAgent } : {}),
  };
}

/**
 * Connections to the collector never keep the process alive: once vqd has stopped (and waited,
 * boundedly, for the last export), a collector that does not answer cannot hold the exit up for
 * the exporter's 10 s timeout. While vqd runs, its NATS connection keeps it alive anyway.
 */
async function unrefAgent(protocol: string): Promise<import("node:http").Agent> {
  const { Agent } = protocol === "http:" ? await import("node:http") : await import("node:https");
  const agent = new Agent({ keepAlive: true });
  const a = agent as unknown as { createConnection: (...args: unknown[]) => { unref?: () => void } | undefined };
  const create = a.createConnection.bind(agent);
  a.createConnection = (...args: unknown[]) => {
    const socket = create(...args);
    socket?.unref?.();
    return socket;
  };
  return agent;
}

/** OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG; default parentbased_always_on. */
function samplerFrom(env: NodeJS.ProcessEnv): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? "parentbased_always_on").trim().toLowerCase();
  const arg = Number(env.OTEL_TRACES_SAMPLER_ARG);
  const ratio = Number.isFinite(arg) && arg >= 0 && arg <= 1 && (env.OTEL_TRACES_SAMPLER_ARG ?? "").trim() !== "" ? arg : 1;
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio);
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

async function spanExporter(s: SignalSettings, role: TelemetryRole): Promise<SpanExporter | undefined> {
  if (s.exporter === "none") return undefined;
  if (s.exporter === "console") return new ConsoleSpanExporter();
  const options = exporterOptions(s, role);
  if (s.protocol === "http/json") return new (await import("@opentelemetry/exporter-trace-otlp-http")).OTLPTraceExporter(options);
  if (s.protocol === "grpc") return new (await import("@opentelemetry/exporter-trace-otlp-grpc")).OTLPTraceExporter(options);
  return new (await import("@opentelemetry/exporter-trace-otlp-proto")).OTLPTraceExporter(options);
}

async function metricExporter(s: SignalSettings, role: TelemetryRole): Promise<PushMetricExporter | undefined> {
  if (s.exporter === "none") return undefined;
  if (s.exporter === "console") return new ConsoleMetricExporter();
  const options = exporterOptions(s, role);
  if (s.protocol === "http/json") return new (await import("@opentelemetry/exporter-metrics-otlp-http")).OTLPMetricExporter(options);
  if (s.protocol === "grpc") return new (await import("@opentelemetry/exporter-metrics-otlp-grpc")).OTLPMetricExporter(options);
  return new (await import("@opentelemetry/exporter-metrics-otlp-proto")).OTLPMetricExporter(options);
}

export interface SdkOptions {
  readonly settings: TelemetrySettings;
  readonly role: TelemetryRole;
  readonly logger: Logger;
}

/** Builds the providers and exporters; the returned backend owns them until shutdown(). */
export async function startSdk({ settings, role, logger }: SdkOptions): Promise<Backend> {
  diag.setLogger(diagLogger(logger), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
  const env = settings.env;
  const ours = resourceFromAttributes({
    "service.name": settings.serviceName,
    "service.version": packageVersion(),
    "service.instance.id": `${hostname()}:${process.pid}`,
    "vq.role": role,
  });
  const detected = detectResources({ detectors: [processDetector, hostDetector] });
  // OTEL_RESOURCE_ATTRIBUTES win over everything but service.name (OTEL_SERVICE_NAME, then the config).
  const fromEnv = resourceFromAttributes({ ...parseHeaders(env.OTEL_RESOURCE_ATTRIBUTES), "service.name": settings.serviceName });
  const resource = defaultResource().merge(detected).merge(ours).merge(fromEnv);

  const spans = await spanExporter(settings.traces, role);
  const batch = {
    ...optional("scheduledDelayMillis", positiveInt(env.OTEL_BSP_SCHEDULE_DELAY)),
    ...optional("maxQueueSize", positiveInt(env.OTEL_BSP_MAX_QUEUE_SIZE)),
    ...optional("maxExportBatchSize", positiveInt(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE)),
    ...optional("exportTimeoutMillis", positiveInt(env.OTEL_BSP_EXPORT_TIMEOUT)),
  };
  const tracerProvider = spans ? new BasicTracerProvider({ resource, sampler: samplerFrom(env), spanProcessors: [new BatchSpanProcessor(spans, batch)] }) : undefined;
  const tracer: Tracer = tracerProvider ? tracerProvider.getTracer("vqd") : trace.getTracer("vqd-noop");

  const metrics = await metricExporter(settings.metrics, role);
  const meterProvider = metrics
    ? new MeterProvider({
        resource,
        readers: [
          new PeriodicExportingMetricReader({
            exporter: metrics,
            exportIntervalMillis: settings.metricIntervalMs,
            exportTimeoutMillis: Math.min(settings.metricIntervalMs, positiveInt(env.OTEL_METRIC_EXPORT_TIMEOUT) ?? 30_000),
          }),
        ],
      })
    : undefined;
  const meter: Meter | undefined = meterProvider?.getMeter("vqd");

  const noopInstrument: Instrument = { add() {}, record() {} };
  const loop = meter ? monitorEventLoopDelay({ resolution: 100 }) : undefined;
  loop?.enable();

  const backend: Backend = {
    startSpan(name: string, kind: SpanKindName, options: SpanOptions, sink: SpanSink): TraceSpan {
      const links: Link[] = [];
      if (options.links) {
        for (const l of options.links) {
          const context = spanContextOf(l);
          if (context) links.push({ context });
        }
      }
      const span = tracer.startSpan(name, { kind: KINDS[kind], attributes: clean(options.attributes), ...(links.length > 0 ? { links } : {}) }, contextOf(options.parent));
      return new OtelSpan(span, options.operation ?? name, sink);
    },
    counter: (name, description, unit) => {
      if (!meter) return noopInstrument;
      const c = meter.createCounter(name, { description, unit });
      return { add: (v, a) => c.add(v, a as Record<string, AttributeValue>), record: (v, a) => c.add(v, a as Record<string, AttributeValue>) };
    },
    histogram: (name, description, unit, boundaries) => {
      if (!meter) return noopInstrument;
      const h = meter.createHistogram(name, { description, unit, advice: { explicitBucketBoundaries: [...boundaries] } });
      return { add: (v, a) => h.record(v, a as Record<string, AttributeValue>), record: (v, a) => h.record(v, a as Record<string, AttributeValue>) };
    },
    gauge: (name, description, unit) => {
      if (!meter) return noopInstrument;
      const g = meter.createGauge(name, { description, unit });
      return { add: (v, a) => g.record(v, a as Record<string, AttributeValue>), record: (v, a) => g.record(v, a as Record<string, AttributeValue>) };
    },
    observe(name, description, unit, callback: Observe, monotonic) {
      if (!meter) return;
      const o =
        monotonic === "updown"
          ? meter.createObservableUpDownCounter(name, { description, unit })
          : monotonic
            ? meter.createObservableCounter(name, { description, unit })
            : meter.createObservableGauge(name, { description, unit });
      o.addCallback((result) => {
        try {
          callback((value, attributes) => result.observe(value, attributes as Record<string, AttributeValue> | undefined));
        } catch (err) {
          logger.debug({ metric: name, err: (err as Error).message }, "metric callback failed");
        }
      });
    },
    async flush() {
      await Promise.allSettled([tracerProvider?.forceFlush(), meterProvider?.forceFlush()]);
    },
    async shutdown() {
      loop?.disable();
      await Promise.allSettled([tracerProvider?.shutdown(), meterProvider?.shutdown()]);
    },
  };

  // Process figures every process exports: memory, event-loop delay.
  let mem: NodeJS.MemoryUsage | undefined;
  let memAt = 0;
  const memory = (): NodeJS.MemoryUsage => {
    const now = Date.now();
    if (!mem || now - memAt > 1000) {
      mem = process.memoryUsage();
      memAt = now;
    }
    return mem;
  };
  backend.observe("vq.process.memory.rss", "Resident set size of this process", "By", (r) => r(memory().rss), false);
  backend.observe("vq.process.memory.heap_used", "V8 heap in use", "By", (r) => r(memory().heapUsed), false);
  backend.observe("vq.process.memory.heap_total", "V8 heap allocated", "By", (r) => r(memory().heapTotal), false);
  if (loop) {
    backend.observe(
      "vq.eventloop.delay",
      "Event-loop delay since the previous collection (p50, p99, max)",
      "s",
      (r) => {
        if (loop.count > 0) {
          r(loop.percentile(50) / 1e9, { "vq.quantile": "p50" });
          r(loop.percentile(99) / 1e9, { "vq.quantile": "p99" });
          r(loop.max / 1e9, { "vq.quantile": "max" });
        }
        loop.reset();
      },
      false,
    );
  }
  return backend;
}
