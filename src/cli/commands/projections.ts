import type { CommandHost } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { printJson } from "../output.js";

export function registerProjections({ program, action }: CommandHost): void {
  const projections = program.command("projections").description("read models built from the event log");
  projections
    .command("rebuild")
    .description("replay the whole event log into a fresh videos table (one transaction)")
    .option("--json", "print JSON")
    .action(
      action(async (ctx, opts: { json?: boolean }) => {
        const started = performance.now();
        const result = await ctx.withStore((store) => store.rebuildProjections());
        const ms = Math.round(performance.now() - started);
        if (opts.json) printJson({ ...result, ms });
        else process.stdout.write(`rebuilt ${result.videos} videos from ${result.events} events in ${ms} ms\n`);
        return EXIT.ok;
      }),
    );
}
