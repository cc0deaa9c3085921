/** Timing, statistics and process-sampling helpers shared by the suites. */
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

export const now = (): number => performance.now();

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function min(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : Math.min(...values);
}

export function max(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : Math.max(...values);
}

/** Least-squares slope of y over x (units of y per unit of x). */
export function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = mean(points.map((p) => p[0]));
  const my = mean(points.map((p) => p[1]));
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

/** Rounds to a sensible number of significant digits for a report (keeps integers above 1,000 whole). */
export function round(value: number, digits = 4): number {
  if (!Number.isFinite(value)) return value;
  if (Math.abs(value) >= 1000) return Math.round(value);
  return Number(value.toPrecision(digits));
}

/** Waits ms, or rejects with the signal's reason as soon as it is aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Resolves with `promise`, or rejects when the signal aborts or `timeoutMs` passes (with `what` in the message). */
export function within<T>(promise: Promise<T>, options: { signal?: AbortSignal; timeoutMs?: number; what: string }): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const { signal } = options;
    if (signal?.aborted) return reject(abortError(signal));
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = (): void => {
      cleanup();
      reject(abortError(signal as AbortSignal));
    };
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}`));
    }, options.timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        cleanup();
        resolve(v);
      },
      (err: unknown) => {
        cleanup();
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

export class ProfileAbortedError extends Error {
  constructor(reason: unknown) {
    super(`profiling run stopped: ${reason instanceof Error ? reason.message : String(reason ?? "aborted")}`);
    this.name = "ProfileAbortedError";
  }
}

export const isProfileAborted = (err: unknown): err is ProfileAbortedError => err instanceof ProfileAbortedError;

export function abortError(signal: AbortSignal): ProfileAbortedError {
  return signal.reason instanceof ProfileAbortedError ? signal.reason : new ProfileAbortedError(signal.reason);
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/** Lets timers and I/O run (a loop of synchronous work would otherwise starve them). */
export const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the thread for ms without spinning (the injected slowness of a synchronous component). */
export function blockFor(ms: number): void {
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
}

/** The clock tick Linux reports CPU times in (USER_HZ; 100 on every mainstream kernel config). */
const CLOCK_TICKS_PER_S = 100;

/** Resident set size of a process in bytes (Linux /proc), or null where /proc is unavailable. */
export function processRssBytes(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** user + system CPU time of a process in seconds (Linux /proc), or null where /proc is unavailable. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of proc(5): indexes 11 and 12 once "pid (comm) " is cut off.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / CLOCK_TICKS_PER_S : null;
  } catch {
    return null;
  }
}

let gcFn: (() => void) | undefined;

/**
 * A full garbage collection, so that heap figures measure what is still reachable. Node exposes
 * gc() only with --expose-gc; the flag can be set at run time and gc() taken from a fresh context.
 */
export function forceGc(): void {
  if (!gcFn) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === "function") gcFn = g;
    else {
      setFlagsFromString("--expose-gc");
      gcFn = runInNewContext("gc") as () => void;
    }
  }
  gcFn();
  gcFn();
}

export const MB = 1024 * 1024;
