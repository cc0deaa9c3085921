import { pino, type Logger as PinoLogger } from "pino";

/** The logging surface every module uses: pino's `(fields, message)` calls. */
export interface Logger {
  trace(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  fatal(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  readonly level: string;
  /** auto: JSON lines, or readable lines when stdout is a terminal. */
  readonly format: "auto" | "json" | "pretty";
  readonly destination?: NodeJS.WritableStream;
}

/** Keys whose values never reach a log line, wherever they appear in the logged object. */
const REDACT = ["password", "pass", "token", "secret", "*.password", "*.pass", "*.token", "*.secret", "*.*.password", "*.*.token"];

export function createLogger(options: LoggerOptions): Logger {
  const pretty = options.format === "pretty" || (options.format === "auto" && process.stdout.isTTY === true);
  const base = { level: options.level, base: { pid: process.pid }, redact: { paths: REDACT, censor: "[redacted]" } };
  if (pretty) {
    return pino(base, readableStream(options.destination ?? process.stdout)) as PinoLogger as unknown as Logger;
  }
  return pino(base, (options.destination ?? process.stdout) as pino.DestinationStream) as unknown as Logger;
}

/** A small line formatter for terminals: `HH:MM:SS LEVEL message key=value ...`. */
function readableStream(out: NodeJS.WritableStream): pino.DestinationStream {
  const names: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO ", 40: "WARN ", 50: "ERROR", 60: "FATAL" };
  return {
    write(line: string) {
      try {
        const { level, time, msg, pid: _pid, hostname: _h, ...rest } = JSON.parse(line) as Record<string, unknown>;
        const t = new Date(Number(time)).toISOString().slice(11, 19);
        const fields = Object.entries(rest)
          .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
          .join(" ");
        out.write(`${t} ${names[Number(level)] ?? level} ${String(msg ?? "")}${fields ? "  " + fields : ""}\n`);
      } catch {
        out.write(line);
      }
    },
  };
}

export const silentLogger: Logger = createLogger({ level: "silent", format: "json" });
