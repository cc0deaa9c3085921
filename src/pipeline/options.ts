/** Checking a step's options: every failure is a non-retryable StepError naming the option. */
import { StepError } from "./errors.js";

type Options = Readonly<Record<string, unknown>>;

export function optionError(kind: string, key: string, reason: string, got?: unknown): StepError {
  const shown = got === undefined ? "" : ` (got ${describe(got)})`;
  return new StepError(`${kind}: options.${key} ${reason}${shown}`, { retryable: false });
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (value === null || typeof value !== "object") return String(value);
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Refuses option names the step does not know (usually typos). */
export function checkKnown(kind: string, options: Options, allowed: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      const list = allowed.length === 0 ? "it takes no options" : `known options: ${allowed.join(", ")}`;
      throw new StepError(`${kind}: unknown option "${key}" (${list})`, { retryable: false });
    }
  }
}

/** An optional integer option within [min, max]; `def` when absent. */
export function intOption(kind: string, options: Options, key: string, min: number, max: number, def: number): number;
export function intOption(kind: string, options: Options, key: string, min: number, max: number, def?: number): number | undefined;
export function intOption(kind: string, options: Options, key: string, min: number, max: number, def?: number): number | undefined {
  const value = options[key];
  if (value === undefined) return def;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw optionError(kind, key, `must be an integer between ${min} and ${max}`, value);
  }
  return value;
}

export function boolOption(kind: string, options: Options, key: string, def: boolean): boolean {
  const value = options[key];
  if (value === undefined) return def;
  if (typeof value !== "boolean") throw optionError(kind, key, "must be true or false", value);
  return value;
}

export function stringOption(kind: string, options: Options, key: string): string | undefined {
  const value = options[key];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw optionError(kind, key, "must be a non-empty string", value);
  return value;
}

export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/** Largest delay a Node timer accepts. */
export const MAX_TIMER_MS = 2_147_483_647;
