import type { Command } from "commander";
import type { CliContext } from "./context.js";

/** Every command's action returns its exit code; main() turns thrown errors into codes. */
export type Action<A extends unknown[]> = (ctx: CliContext, ...args: A) => Promise<number> | number;

export interface CommandHost {
  readonly program: Command;
  /** Wraps an action so its exit code reaches main(). */
  action<A extends unknown[]>(fn: Action<A>): (...args: unknown[]) => Promise<void>;
}
