import { Option } from "commander";
import { formatConfig, redactConfig } from "../../config/index.js";
import type { CommandHost } from "../command.js";
import { EXIT } from "../exit-codes.js";

export function registerConfig({ program, action }: CommandHost): void {
  const config = program.command("config").description("inspect the configuration");
  config
    .command("print")
    .description("print the effective configuration (defaults < file < VQD_* environment), secrets redacted")
    .addOption(new Option("--format <format>", "output format").choices(["yaml", "json"]).default("yaml"))
    .option("--json", "same as --format json")
    .action(
      action((ctx, opts: { format: "yaml" | "json"; json?: boolean }) => {
        process.stdout.write(formatConfig(redactConfig(ctx.config), opts.json ? "json" : opts.format));
        return EXIT.ok;
      }),
    );
}
