import type { CommandHost } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { printJson } from "../output.js";

export function registerDoctor({ program, action }: CommandHost): void {
  program
    .command("doctor")
    .description("check node, nats-server, ffmpeg, the config, NATS and JetStream, the data dir, the database and free space; exit 1 if anything fails")
    .option("--json", "print JSON")
    .action(
      action(async (ctx, opts: { json?: boolean }) => {
        // Loaded here, not at the top: the doctor pulls in the NATS client and SQLite, which the
        // other commands must not pay for at start-up.
        const { formatReport, runDoctor } = await import("../../doctor/index.js");
        const fromOption = program.opts<{ config?: string }>().config;
        const file = fromOption ? `--config ${fromOption}` : ctx.env.VQD_CONFIG ? `VQD_CONFIG=${ctx.env.VQD_CONFIG}` : "no config file";
        // A bad config is one failed line of the report, not exit 78 (see src/doctor/index.ts).
        const report = await runDoctor({ loadConfig: () => ctx.config, configSource: `${file}, VQD_* environment` });
        if (opts.json) printJson(report);
        else process.stdout.write(formatReport(report));
        return report.ok ? EXIT.ok : EXIT.failed;
      }),
    );
}
