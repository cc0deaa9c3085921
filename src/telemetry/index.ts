/**
 * Telemetry: traces and metrics over OTLP, the slow-operation log, the queue-depth alert and
 * memory snapshots. `setupTelemetry()` runs once at startup, before the rest of the program is
 * imported, and returns the `Telemetry` that is passed to every component.
 */
import type { Config } from "../config/index.js";
import type { Logger } from "../shared/logger.js";
import { VqTelemetry } from "./facade.js";
import { telemetrySettings, type TelemetryRole } from "./settings.js";
import type { Telemetry } from "./types.js";

export type { Attributes, AttributeValue, CommittedResult, Observe, Outcome, ParentRef, SpanKindName, SpanOptions, Telemetry, TraceHeaders, TraceSpan } from "./types.js";
export { NOOP_SPAN, VqTelemetry, DURATION_BUCKETS_S } from "./facade.js";
export { telemetrySettings, type TelemetryRole, type TelemetrySettings, type OtlpProtocol } from "./settings.js";
export { formatTraceparent, isSampled, parseTraceparent, traceparentOf, unsampled } from "./trace-context.js";
export { QueueDepthMonitor, type QueueDepthAlert, type QueueDepthMonitorOptions } from "./depth-alert.js";
export {
  growthPerDay,
  listMemorySnapshots,
  memoryGrowth,
  takeMemorySnapshot,
  type MemoryGrowth,
  type MemorySnapshot,
  type MemorySnapshotOptions,
} from "./snapshots.js";

/** Telemetry that does nothing at all (tests, `telemetry.enabled: false`). */
export const noopTelemetry: Telemetry = new VqTelemetry({ mode: "off", slowOperationMs: Number.MAX_SAFE_INTEGER }, {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
  fatal() {},
  child() {
    return this;
  },
});

export interface SetupOptions {
  readonly role: TelemetryRole;
  readonly logger: Logger;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Builds the process's Telemetry from the config and OTEL_* variables. The SDK is imported only
 * when something is exported; if it cannot start, vqd logs why and runs without exporting
 * rather than not at all.
 */
export async function setupTelemetry(config: Config, options: SetupOptions): Promise<Telemetry> {
  const parsed = telemetrySettings(config, options.env ?? process.env);
  // The CLI does not log slow operations: its stderr is the user's, and the daemon logs its side.
  const settings = options.role === "cli" ? { ...parsed, slowOperationMs: Number.POSITIVE_INFINITY } : parsed;
  const log = options.logger.child({ component: "telemetry" });
  if (settings.mode !== "export") {
    if (settings.mode === "local") log.debug({ reason: settings.reason }, "telemetry: nothing exported");
    return new VqTelemetry(settings, log);
  }
  try {
    const { startSdk } = await import("./sdk.js");
    const backend = await startSdk({ settings, role: options.role, logger: log });
    log.debug({ traces: settings.traces, metrics: settings.metrics, service: settings.serviceName }, "telemetry: exporting over OTLP");
    return new VqTelemetry(settings, log, backend);
  } catch (err) {
    log.warn({ err: (err as Error).message }, "telemetry: the OpenTelemetry SDK could not start; running without exporting");
    return new VqTelemetry({ ...settings, mode: "local" }, log);
  }
}
