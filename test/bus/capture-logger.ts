import type { BusLogger } from "../../src/bus/index.js";

export interface Line {
  level: "info" | "warn" | "error";
  msg: string;
  obj: object;
}

/** A BusLogger that keeps every line, for assertions on what the bus logged. */
export function captureLogger(): BusLogger & { lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: Line["level"]) => (obj: object, msg?: string) => lines.push({ level, obj, msg: msg ?? "" });
  return { lines, info: at("info"), warn: at("warn"), error: at("error") };
}
