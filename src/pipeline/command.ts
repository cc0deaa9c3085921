/** Finding the program a step runs. */
import fs from "node:fs";
import path from "node:path";
import { StepError } from "./errors.js";

/**
 * Where `command` is: a path (resolved against `cwd`) or a name looked up in PATH. Throws a
 * non-retryable StepError when it does not exist or is not executable.
 */
export function resolveCommand(command: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv; label?: string; installHint?: string } = {}): string {
  const label = opts.label ?? path.basename(command);
  const executable = (file: string): "ok" | "missing" | "denied" => {
    try {
      // No exception for the PATH entries that do not hold it (most of them): ~20 us each.
      if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) return "missing";
      fs.accessSync(file, fs.constants.X_OK);
      return "ok";
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === "EACCES" ? "denied" : "missing";
    }
  };
  let denied: string | undefined;
  const candidates = command.includes("/")
    ? [path.resolve(opts.cwd ?? process.cwd(), command)]
    : ((opts.env ?? process.env).PATH ?? "/usr/local/bin:/usr/bin:/bin").split(":").map((dir) => path.join(dir || ".", command));
  for (const candidate of candidates) {
    const state = executable(candidate);
    if (state === "ok") return candidate;
    if (state === "denied") denied ??= candidate;
  }
  if (denied) throw new StepError(`${label}: permission denied running ${denied} (is it executable?)`, { retryable: false });
  const hint = opts.installHint ? `; ${opts.installHint}` : "";
  throw new StepError(`${label}: command not found: ${command}${hint}`, { retryable: false });
}
