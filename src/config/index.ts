export { loadConfig, defaultConfig, type LoadOptions } from "./load.js";
export { redactConfig, formatConfig, REDACTED, type ConfigFormat } from "./redact.js";
export { resolveSecret } from "./secrets.js";
export { ConfigError, isConfigError, EX_CONFIG, type ConfigErrorDetails } from "./errors.js";
export type {
  Config,
  DatabaseConfig,
  NatsConfig,
  EmbeddedNatsConfig,
  NatsTlsConfig,
  WorkersConfig,
  BackoffConfig,
  LanesConfig,
  LaneConfig,
  PipelineConfig,
  StepConfig,
  TelemetryConfig,
  SchedulesConfig,
  ScheduleConfig,
  LoggingConfig,
  LogLevel,
  LogFormat,
  ApiConfig,
  SqliteSynchronous,
} from "./schema.js";
