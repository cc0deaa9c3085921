/**
 * The single error type of the config module. The CLI prints `message` and exits with
 * `exitCode` (78, EX_CONFIG from sysexits.h).
 */

/** sysexits.h EX_CONFIG: "something was found in an unconfigured or misconfigured state". */
export const EX_CONFIG = 78;

export interface ConfigErrorDetails {
  /** Dotted key path such as `workers.count` or `pipelines.fast.steps[0].step`; "" when no key applies. */
  keyPath: string;
  /** What is wrong, phrased to follow the key path ("must be ..."). */
  reason: string;
  /** A config file path, an environment variable name, or "defaults". */
  source: string;
  /** 1-based line in the source file, when known. */
  line?: number;
  cause?: unknown;
}

export class ConfigError extends Error {
  readonly keyPath: string;
  readonly reason: string;
  readonly source: string;
  readonly line: number | undefined;
  readonly exitCode = EX_CONFIG;

  constructor(details: ConfigErrorDetails) {
    super(formatMessage(details), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "ConfigError";
    this.keyPath = details.keyPath;
    this.reason = details.reason;
    this.source = details.source;
    this.line = details.line;
  }
}

export const isConfigError = (e: unknown): e is ConfigError => e instanceof ConfigError;

function formatMessage({ keyPath, reason, source, line }: ConfigErrorDetails): string {
  const where = line === undefined ? source : `${source}:${line}`;
  return `invalid config: ${keyPath ? `${keyPath}: ` : ""}${reason} [from ${where}]`;
}
