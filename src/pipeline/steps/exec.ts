import { StepError } from "../errors.js";
import { boolOption, checkKnown, intOption, MAX_TIMER_MS, optionError } from "../options.js";
import { cleanStaleTemps, writeAtomicMany } from "../outputs.js";
import { runChecked } from "../process.js";
import type { Step } from "../step.js";

const OPTIONS = ["command", "timeoutMs", "stallTimeoutMs", "retryable"] as const;
const PLACEHOLDER = /\{(input|outputDir|videoId|output:([^{}]*))\}/g;
const OUTPUT_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const DEFAULT_TIMEOUT_MS = 3_600_000;
/** Environment variables passed through to the command; nothing else of the daemon's environment is. */
const PASS_ENV = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"];

function commandOf(options: Readonly<Record<string, unknown>>): { command: string[]; outputs: string[] } {
  const command = options.command;
  if (!Array.isArray(command) || command.length === 0 || !command.every((a): a is string => typeof a === "string")) {
    throw optionError("exec", "command", 'must be a non-empty list of strings, e.g. ["convert", "{input}", "{output:x.png}"]', command);
  }
  if (command[0] === "") throw optionError("exec", "command", "must start with the program to run", command);
  const outputs: string[] = [];
  for (const arg of command) {
    for (const m of arg.matchAll(PLACEHOLDER)) {
      const name = m[2];
      if (name === undefined) continue;
      if (!OUTPUT_NAME.test(name) || name === "." || name === "..") {
        throw optionError("exec", "command", `has {output:${name}}: an output must be a plain file name ([A-Za-z0-9_][A-Za-z0-9._-]*)`);
      }
      if (!outputs.includes(name)) outputs.push(name);
    }
  }
  return { command, outputs };
}

/**
 * `exec`: runs `options.command` (a list: program and arguments, no shell) with the placeholders
 * `{input}`, `{outputDir}`, `{videoId}` and `{output:NAME}` replaced. `{output:NAME}` is a
 * temporary path the command writes; it is renamed to `<outputDir>/NAME` when the command
 * succeeds, and must exist by then. Options: `timeoutMs` (default 1 h), `stallTimeoutMs`
 * (kill when the command prints nothing on stdout for that long; default off), `retryable`
 * (false: a non-zero exit fails for good; default true). The command runs in `<outputDir>` with
 * PATH, HOME, LANG, LC_ALL, TZ, TMPDIR and USER from the daemon's environment plus VQD_VIDEO_ID,
 * VQD_INPUT and VQD_OUTPUT_DIR. Outputs `{ exitCode, files: { NAME: path }, ms }`.
 */
export function createExecStep(): Step {
  return {
    kind: "exec",
    validateOptions(options) {
      checkKnown("exec", options, OPTIONS);
      commandOf(options);
      intOption("exec", options, "timeoutMs", 1, MAX_TIMER_MS);
      intOption("exec", options, "stallTimeoutMs", 1, MAX_TIMER_MS);
      boolOption("exec", options, "retryable", true);
    },
    async run(input, ctx) {
      const { command, outputs } = commandOf(input.options);
      const timeoutMs = intOption("exec", input.options, "timeoutMs", 1, MAX_TIMER_MS, DEFAULT_TIMEOUT_MS);
      const stallTimeoutMs = intOption("exec", input.options, "stallTimeoutMs", 1, MAX_TIMER_MS);
      const retryable = boolOption("exec", input.options, "retryable", true);
      const program = command[0] as string;
      cleanStaleTemps(input.outputDir, outputs);

      const env: NodeJS.ProcessEnv = {};
      for (const key of PASS_ENV) if (process.env[key] !== undefined) env[key] = process.env[key];
      Object.assign(env, { VQD_VIDEO_ID: input.videoId, VQD_INPUT: input.path, VQD_OUTPUT_DIR: input.outputDir });

      const { result, files } = await writeAtomicMany(
        input.outputDir,
        outputs,
        async (temps) => {
          const substitute = (arg: string): string =>
            arg.replace(PLACEHOLDER, (_all, what: string, name: string | undefined) => {
              if (name !== undefined) return temps[name] as string;
              if (what === "input") return input.path;
              if (what === "outputDir") return input.outputDir;
              return input.videoId;
            });
          return runChecked(substitute(program), command.slice(1).map(substitute), {
            signal: ctx.signal,
            timeoutMs,
            stallTimeoutMs,
            cwd: input.outputDir,
            env,
            label: `exec ${program}`,
            installHint: "check options.command[0] (a program in PATH or an absolute path)",
            classify: () => ({ retryable }),
          });
        },
        (name) => new StepError(`exec: ${program} exited 0 but did not write {output:${name}}`, { retryable: false }),
      );
      ctx.progress(100);
      return { exitCode: result.code, files, ms: result.ms };
    },
  };
}
