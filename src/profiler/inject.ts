/**
 * Deliberate slowness, for the test that proves a slow component fails its target in the report.
 * Only runProfile()'s `inject` option turns it on (a program, never the CLI or the schedule).
 */
import { blockFor } from "./measure.js";

/** The same object, whose every method call is first held up by `delayMs` (the thread blocks, as slow synchronous I/O would). */
export function slowed<T extends object>(target: T, delayMs: number | undefined): T {
  if (!delayMs || delayMs <= 0) return target;
  return new Proxy(target, {
    get(obj, key) {
      const value: unknown = Reflect.get(obj, key, obj);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        blockFor(delayMs);
        return (value as (...a: unknown[]) => unknown).apply(obj, args);
      };
    },
  });
}
