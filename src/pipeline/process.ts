/**
 * Running a child process for a step: an argument array (never a shell), its own process group
 * so that abort, timeout and stall kill the whole group (SIGTERM, then SIGKILL after a grace
 * period), and the tail of stderr kept for error messages. How the process is started (the
 * spawn helper, or Node's spawn) and how it is made to die with the daemon is in spawner.ts.
 */
import { resolveCommand } from "./command.js";
import { StepAbortedError, StepError } from "./errors.js";
import { launch } from "./spawner.js";

export interface RunOptions {
  /** Aborting kills the process group; the run then fails with a StepAbortedError. */
  readonly signal?: AbortSignal;
  /** Whole-run limit; exceeding it kills the group and fails with a retryable StepError. 0/undefined = none. */
  readonly timeoutMs?: number;
  /**
   * Liveness: if stdout stays silent this long, the group is killed and the run fails with a
   * retryable StepError "stalled". 0/undefined = no stall detection.
   */
  readonly stallTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL. Default 2000 ms. */
  readonly killGraceMs?: number;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Called with each complete stdout line (without the newline). */
  readonly onStdoutLine?: (line: string) => void;
  /** Called with each stderr chunk (for classifying errors by content). */
  readonly onStderr?: (text: string) => void;
  /** Called once the process is spawned. */
  readonly onSpawn?: (pid: number) => void;
  /** How many bytes of stderr to keep. Default 4096. */
  readonly stderrTailBytes?: number;
  /** Keep up to this many bytes of stdout in the result (default 0: discard). */
  readonly stdoutBytes?: number;
  /** Names the program in messages (default: the command's base name). */
  readonly label?: string;
  /** Appended to the "not found" error, e.g. "install it with apt-get install ffmpeg". */
  readonly installHint?: string;
  /** Kill the child if this process dies (see spawner.ts). Default true; false starts it with Node's spawn, unguarded. */
  readonly dieWithParent?: boolean;
}

export interface RunResult {
  readonly pid: number;
  /** Exit code, or null when a signal ended the process. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderrTail: string;
  readonly stdout: string;
  readonly ms: number;
}

const DEFAULT_GRACE_MS = 2000;

/**
 * Runs `command args...` to its end. Resolves with the exit status whatever it is; rejects with
 * StepAbortedError (our abort), a retryable StepError (timeout, stall, spawn failure) or a
 * non-retryable StepError (the binary does not exist or is not executable).
 */
export function runProcess(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const label = options.label ?? command.split("/").pop() ?? command;
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(new StepAbortedError(abortReason(signal)));
  const started = performance.now();

  let program: string;
  try {
    program = resolveCommand(command, { cwd: options.cwd, env: options.env, label, installHint: options.installHint });
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise<RunResult>((resolve, reject) => {
    const tailMax = options.stderrTailBytes ?? 4096;
    const stdoutMax = options.stdoutBytes ?? 0;
    let pid: number | undefined;
    let stderrTail = "";
    let stdout = "";
    let partialLine = "";
    /** Why we killed the group, if we did. */
    let killedFor: { kind: "abort" | "timeout" | "stall"; detail: string } | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    let timeoutTimer: NodeJS.Timeout | undefined;
    let stallTimer: NodeJS.Timeout | undefined;
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let closeFallback: NodeJS.Timeout | undefined;
    let settled = false;

    const killGroup = (sig: NodeJS.Signals): void => {
      if (pid === undefined) return;
      try {
        process.kill(-pid, sig);
      } catch {
        // ESRCH: the group is already gone.
      }
    };

    const stop = (kind: "abort" | "timeout" | "stall", detail: string): void => {
      if (killedFor || exited) return;
      killedFor = { kind, detail };
      // Before the spawn is reported there is no group to signal: the kill happens on "spawn".
      killGroup("SIGTERM");
      graceTimer = setTimeout(() => killGroup("SIGKILL"), options.killGraceMs ?? DEFAULT_GRACE_MS);
    };

    const onAbort = (): void => stop("abort", signal ? abortReason(signal) : "aborted");

    const armStall = (): void => {
      if (!options.stallTimeoutMs || killedFor) return;
      clearTimeout(stallTimer);
      stallTimer = setTimeout(
        () => stop("stall", `stalled: ${label} made no progress for ${options.stallTimeoutMs} ms`),
        options.stallTimeoutMs,
      );
    };

    const cleanup = (): void => {
      clearTimeout(timeoutTimer);
      clearTimeout(stallTimer);
      clearTimeout(closeFallback);
      signal?.removeEventListener("abort", onAbort);
    };

    const finish = (): void => {
      if (settled || !exited) return;
      settled = true;
      cleanup();
      if (killedFor) {
        // The leader is gone; make sure no other member of its group outlives it.
        killGroup("SIGKILL");
        clearTimeout(graceTimer);
      }
      if (partialLine !== "") options.onStdoutLine?.(partialLine);
      const ms = Math.round(performance.now() - started);
      if (killedFor?.kind === "abort") return reject(new StepAbortedError(killedFor.detail));
      if (killedFor?.kind === "timeout") return reject(new StepError(killedFor.detail, { retryable: true }));
      if (killedFor?.kind === "stall") return reject(new StepError(killedFor.detail, { retryable: true }));
      resolve({ pid: pid ?? -1, code: exited.code, signal: exited.signal, stderrTail, stdout, ms });
    };

    const child = launch(
      { file: program, args, cwd: options.cwd, env: options.env, dieWithParent: options.dieWithParent },
      {
        spawn: (spawned) => {
          pid = spawned;
          options.onSpawn?.(spawned);
          // Killed (aborted, timed out) before it was even running.
          if (killedFor) killGroup("SIGTERM");
        },
        error: (err) => {
          if (settled) return;
          settled = true;
          cleanup();
          clearTimeout(graceTimer);
          if (err.code === "ENOENT" && err.syscall !== "chdir") {
            const hint = options.installHint ? `; ${options.installHint}` : "";
            return reject(new StepError(`${label}: command not found: ${command}${hint}`, { retryable: false, cause: err }));
          }
          if (err.code === "EACCES" && err.syscall !== "chdir") {
            return reject(new StepError(`${label}: permission denied running ${command} (is it executable?)`, { retryable: false, cause: err }));
          }
          reject(new StepError(`${label}: could not start ${command}: ${err.message}`, { retryable: true, cause: err }));
        },
        stdout: (chunk) => {
          armStall();
          if (stdoutMax > 0 && stdout.length < stdoutMax) stdout += chunk.slice(0, stdoutMax - stdout.length);
          if (!options.onStdoutLine) return;
          const text = partialLine + chunk;
          const lines = text.split("\n");
          partialLine = lines.pop() ?? "";
          for (const line of lines) options.onStdoutLine(line.endsWith("\r") ? line.slice(0, -1) : line);
        },
        stderr: (chunk) => {
          options.onStderr?.(chunk);
          stderrTail += chunk;
          if (stderrTail.length > tailMax * 2) stderrTail = stderrTail.slice(-tailMax);
        },
        exit: (code, sig) => {
          exited = { code, signal: sig };
          if (stderrTail.length > tailMax) stderrTail = stderrTail.slice(-tailMax);
          // Wait for the output to drain ("close"), but not forever: a grandchild that left the
          // group could hold the pipes open.
          closeFallback = setTimeout(() => {
            child.release();
            finish();
          }, 1000);
        },
        close: () => finish(),
      },
    );

    if (signal) signal.addEventListener("abort", onAbort, { once: true });
    if (options.timeoutMs && options.timeoutMs > 0) {
      timeoutTimer = setTimeout(() => stop("timeout", `${label} timed out after ${options.timeoutMs} ms`), options.timeoutMs);
    }
    armStall();
  });
}

export interface CheckedRunOptions extends RunOptions {
  /**
   * Decides whether a non-zero exit is worth retrying (default: yes). Gets the result; may also
   * return a better message.
   */
  readonly classify?: (result: RunResult) => { retryable: boolean; message?: string } | undefined;
}

/** Like runProcess, but a non-zero exit (or death by a signal we did not send) is a StepError. */
export async function runChecked(command: string, args: readonly string[], options: CheckedRunOptions = {}): Promise<RunResult> {
  const result = await runProcess(command, args, options);
  if (result.code === 0) return result;
  const label = options.label ?? command.split("/").pop() ?? command;
  const verdict = options.classify?.(result);
  const how = result.code === null ? `was killed by ${result.signal ?? "a signal"}` : `exited with code ${result.code}`;
  const detail = lastLines(result.stderrTail);
  const message = verdict?.message ?? `${label} ${how}${detail ? `: ${detail}` : ""}`;
  throw new StepError(message, { retryable: verdict?.retryable ?? true });
}

/** The last few non-empty lines of a stderr tail, joined with " | ". */
export function lastLines(text: string, count = 3): string {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .slice(-count)
    .join(" | ");
}

export function abortReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason.message;
  return reason === undefined ? "aborted" : String(reason);
}
