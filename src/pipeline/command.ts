/** Finding the program a step runs. */
import fs from "node:fs";
import path from "node:path";
import { StepError } from "./errors.js";

/**
 * Where each name was last found, per PATH. A worker starts the same few programs for every
 * video, and walking PATH for each start (most entries miss: ~30 stat calls per video for
 * ffprobe + ffmpeg x2 with an 11-entry PATH) was ~2% of the daemon's CPU in the pipeline bench.
 * A remembered path is checked again at each use; if it is gone, PATH is walked again. As in a
 * shell's command hash, a program installed later in an earlier PATH entry is not picked up
 * until the one found first disappears (or the process restarts).
 */
const found = new Map<string, string>();
/** Far above what a configuration uses (a few programs x a few PATHs); past it the cache starts over. */
const FOUND_MAX = 256;

type Executable = "ok" | "missing" | "denied";

function executable(file: string): Executable {
  try {
    // No exception for the PATH entries that do not hold it (most of them): ~20 us each.
    if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) return "missing";
    fs.accessSync(file, fs.constants.X_OK);
    return "ok";
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EACCES" ? "denied" : "missing";
  }
}

/**
 * Where `command` is: a path (resolved against `cwd`) or a name looked up in PATH. Throws a
 * non-retryable StepError when it does not exist or is not executable.
 */
export function resolveCommand(command: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv; label?: string; installHint?: string } = {}): string {
  const label = opts.label ?? path.basename(command);
  let denied: string | undefined;
  let candidates: string[];
  let key: string | undefined;
  if (command.includes("/")) {
    candidates = [path.resolve(opts.cwd ?? process.cwd(), command)];
  } else {
    const searchPath = (opts.env ?? process.env).PATH ?? "/usr/local/bin:/usr/bin:/bin";
    key = `${searchPath}\0${command}`;
    const known = found.get(key);
    if (known !== undefined && executable(known) === "ok") return known;
    candidates = searchPath.split(":").map((dir) => path.join(dir || ".", command));
  }
  for (const candidate of candidates) {
    const state = executable(candidate);
    if (state === "ok") {
      if (key !== undefined) {
        if (found.size >= FOUND_MAX) found.clear();
        found.set(key, candidate);
      }
      return candidate;
    }
    if (state === "denied") denied ??= candidate;
  }
  if (key !== undefined) found.delete(key);
  if (denied) throw new StepError(`${label}: permission denied running ${denied} (is it executable?)`, { retryable: false });
  const hint = opts.installHint ? `; ${opts.installHint}` : "";
  throw new StepError(`${label}: command not found: ${command}${hint}`, { retryable: false });
}
