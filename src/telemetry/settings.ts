import type { Config } from "../config/index.js";

export type OtlpProtocol = "http/protobuf" | "http/json" | "grpc";
export type SignalExporter = "otlp" | "console" | "none";

/** Which process a telemetry instance describes (resource attribute `vq.role`). */
export type TelemetryRole = "daemon" | "worker" | "cli";

export interface TelemetrySettings {
  readonly mode: "off" | "local" | "export";
  /** Why nothing is exported (for the startup log line); "" when exporting. */
  readonly reason: string;
  readonly serviceName: string;
  readonly slowOperationMs: number;
  readonly queueDepthAlert: number;
  /** 0 = no limit. */
  readonly tracedJobsPerSecond: number;
  readonly traces: SignalSettings;
  readonly metrics: SignalSettings;
  readonly metricIntervalMs: number;
  /** The environment the settings were read from (the SDK reads the sampler, batch and resource variables from it). */
  readonly env: NodeJS.ProcessEnv;
}

export interface SignalSettings {
  readonly exporter: SignalExporter;
  readonly protocol: OtlpProtocol;
  /** Full URL (http) or address (grpc). */
  readonly url: string;
  /** From OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]HEADERS. */
  readonly headers: Readonly<Record<string, string>>;
  /** From OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]TIMEOUT; undefined: the exporter's default (10 s). */
  readonly timeoutMs: number | undefined;
}

const PROTOCOLS: readonly OtlpProtocol[] = ["http/protobuf", "http/json", "grpc"];

/**
 * Telemetry settings from the config file and the standard OTEL_* variables. The SDK is loaded
 * only when telemetry is enabled, OTEL_SDK_DISABLED is not true, and something says where to send
 * (telemetry.endpoint, an OTEL_EXPORTER_OTLP_*ENDPOINT, or OTEL_TRACES_EXPORTER /
 * OTEL_METRICS_EXPORTER naming an exporter): a daemon nobody collects from pays nothing.
 * OTEL_* variables win over the config file's telemetry.endpoint and telemetry.protocol.
 * Everything is read from `env` (not from process.env behind the caller's back).
 */
export function telemetrySettings(config: Config, env: NodeJS.ProcessEnv = process.env): TelemetrySettings {
  const t = config.telemetry;
  const serviceName = nonEmpty(env.OTEL_SERVICE_NAME) ?? t.serviceName;
  const base = {
    serviceName,
    slowOperationMs: t.slowOperationMs,
    queueDepthAlert: t.queueDepthAlert,
    tracedJobsPerSecond: t.tracedJobsPerSecond,
    metricIntervalMs: positiveInt(env.OTEL_METRIC_EXPORT_INTERVAL) ?? t.metricIntervalMs,
    env,
  };
  const none: SignalSettings = { exporter: "none", protocol: "http/protobuf", url: "", headers: {}, timeoutMs: undefined };
  if (!t.enabled) return { ...base, mode: "off", reason: "telemetry.enabled is false", traces: none, metrics: none };
  if (isTrue(env.OTEL_SDK_DISABLED)) return { ...base, mode: "local", reason: "OTEL_SDK_DISABLED is true", traces: none, metrics: none };

  const configured =
    t.endpoint !== "" ||
    [env.OTEL_EXPORTER_OTLP_ENDPOINT, env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT].some((v) => nonEmpty(v) !== undefined) ||
    [env.OTEL_TRACES_EXPORTER, env.OTEL_METRICS_EXPORTER].some((v) => v !== undefined && v.trim() !== "" && v.trim() !== "none");
  if (!configured) {
    return { ...base, mode: "local", reason: "no exporter endpoint (set telemetry.endpoint or OTEL_EXPORTER_OTLP_ENDPOINT)", traces: none, metrics: none };
  }
  const traces = signal("traces", t.endpoint, t.protocol, env);
  const metrics = signal("metrics", t.endpoint, t.protocol, env);
  if (traces.exporter === "none" && metrics.exporter === "none") {
    return { ...base, mode: "local", reason: "OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER are none", traces, metrics };
  }
  return { ...base, mode: "export", reason: "", traces, metrics };
}

function signal(kind: "traces" | "metrics", configEndpoint: string, configProtocol: string, env: NodeJS.ProcessEnv): SignalSettings {
  const upper = kind.toUpperCase();
  const exporter = parseExporter(env[`OTEL_${upper}_EXPORTER`]);
  const protocol = parseProtocol(env[`OTEL_EXPORTER_OTLP_${upper}_PROTOCOL`]) ?? parseProtocol(env.OTEL_EXPORTER_OTLP_PROTOCOL) ?? parseProtocol(configProtocol) ?? "http/protobuf";
  // The per-signal variable is the full URL; the general one (or the config file's endpoint) is
  // a base to which the signal's path is added. Resolved here, from the environment given, so
  // that the exporters never fall back on a default address by themselves.
  const own = nonEmpty(env[`OTEL_EXPORTER_OTLP_${upper}_ENDPOINT`]);
  const base = nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT) ?? (configEndpoint !== "" ? configEndpoint : undefined);
  const url = protocol === "grpc" ? (own ?? base ?? "http://localhost:4317") : (own ?? `${(base ?? "http://localhost:4318").replace(/\/+$/, "")}/v1/${kind}`);
  return {
    exporter,
    protocol,
    url,
    headers: { ...parseHeaders(env.OTEL_EXPORTER_OTLP_HEADERS), ...parseHeaders(env[`OTEL_EXPORTER_OTLP_${upper}_HEADERS`]) },
    timeoutMs: positiveInt(env[`OTEL_EXPORTER_OTLP_${upper}_TIMEOUT`]) ?? positiveInt(env.OTEL_EXPORTER_OTLP_TIMEOUT),
  };
}

/** `key1=value1,key2=value2` with URL-encoded values (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES). */
export function parseHeaders(v: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (v ?? "").split(",")) {
    const i = pair.indexOf("=");
    if (i <= 0) continue;
    try {
      out[decodeURIComponent(pair.slice(0, i).trim())] = decodeURIComponent(pair.slice(i + 1).trim());
    } catch {
      // a malformed escape: skip the pair, as the SDK does
    }
  }
  return out;
}

function parseExporter(v: string | undefined): SignalExporter {
  const first = (v ?? "otlp").split(",")[0]?.trim().toLowerCase() ?? "otlp";
  if (first === "" || first === "otlp") return "otlp";
  if (first === "console") return "console";
  return "none";
}

function parseProtocol(v: string | undefined): OtlpProtocol | undefined {
  const p = v?.trim().toLowerCase();
  return PROTOCOLS.find((x) => x === p);
}

const nonEmpty = (v: string | undefined): string | undefined => (v !== undefined && v.trim() !== "" ? v.trim() : undefined);
const isTrue = (v: string | undefined): boolean => v?.trim().toLowerCase() === "true";

export function positiveInt(v: string | undefined): number | undefined {
  if (v === undefined || v.trim() === "") return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}
