import { Command, CommanderError } from "commander";
import { isApiReplyError } from "../api/index.js";
import { isConfigError } from "../config/index.js";
import { isDomainError } from "../domain/index.js";
import { isInputError } from "../intake/index.js";
import { isConcurrencyError, isStoreError } from "../store/index.js";
import type { Action, CommandHost } from "./command.js";
import { registerConfig } from "./commands/config.js";
import { registerControl } from "./commands/control.js";
import { registerEnqueue } from "./commands/enqueue.js";
import { registerList } from "./commands/list.js";
import { registerProjections } from "./commands/projections.js";
import { registerShow } from "./commands/show.js";
import { registerStart } from "./commands/start.js";
import { registerStatus } from "./commands/status.js";
import { CliContext, type GlobalOptions } from "./context.js";
import { EXIT } from "./exit-codes.js";

export interface MainOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/** Runs the CLI and resolves to the process exit code; never calls process.exit itself. */
export async function main(argv: readonly string[], options: MainOptions = {}): Promise<number> {
  let code: number = EXIT.ok;
  const program = new Command("vqd")
    .description("vqd — video queue daemon")
    .option("-c, --config <file>", "config file (default: $VQD_CONFIG; then built-in defaults)")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();

  const host: CommandHost = {
    program,
    action<A extends unknown[]>(fn: Action<A>) {
      // Commander calls actions with (...arguments, options, command).
      return async (...args: unknown[]) => {
        const command = args[args.length - 1] as Command;
        const ctx = new CliContext(command.optsWithGlobals<GlobalOptions>(), options.env ?? process.env, options.cwd ?? process.cwd());
        try {
          code = await fn(ctx, ...(args.slice(0, -1) as A));
        } finally {
          await ctx.close();
        }
      };
    },
  };
  registerStart(host);
  registerEnqueue(host);
  registerList(host);
  registerShow(host);
  registerStatus(host);
  registerControl(host);
  registerProjections(host);
  registerConfig(host);
  (await import("./commands/doctor.js")).registerDoctor(host);
  (await import("./commands/profile.js")).registerProfile(host);
  (await import("./commands/snapshot.js")).registerSnapshot(host);

  try {
    await program.parseAsync(argv as string[], { from: "user" });
    return code;
  } catch (err) {
    return reportError(err);
  }
}

function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // Commander has already printed the message (or the help). Help asked for (`--help`, `vqd help`)
    // is a success; help shown because a command is missing (`vqd`, `vqd config`) has a non-zero
    // exitCode and is a usage error.
    const helpOrVersion = err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help";
    return helpOrVersion && err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  const e = err as Error & { exitCode?: number };
  if (isConfigError(err)) {
    process.stderr.write(`vqd: ${e.message}\n`);
    return EXIT.config;
  }
  if (isInputError(err) || isDomainError(err) || isConcurrencyError(err) || isStoreError(err) || isApiReplyError(err)) {
    process.stderr.write(`vqd: ${e.message}\n`);
    return EXIT.failed;
  }
  if (typeof e?.exitCode === "number") {
    process.stderr.write(`vqd: ${e.message}\n`);
    return e.exitCode;
  }
  process.stderr.write(`vqd: unexpected error: ${e?.stack ?? String(err)}\n`);
  return EXIT.failed;
}
