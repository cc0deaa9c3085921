/**
 * The logging surface the bus needs: a subset of pino's API, so a pino logger (or a child of
 * one) can be passed as-is. Every call is `(fields, message)`.
 */
export interface BusLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: BusLogger = {
  info: () => {},
  warn: () => {},
  error: () => {},
};
