import { LANES, VIDEO_STATES } from "../../domain/index.js";
import type { CommandHost } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { formatPairs, printJson } from "../output.js";

export function registerStatus({ program, action }: CommandHost): void {
  program
    .command("status")
    .description("queue depth per lane and videos per state")
    .option("--json", "print JSON")
    .action(
      action(async (ctx, opts: { json?: boolean }) => {
        const counts = await ctx.withStore((store) => store.counts());
        if (opts.json) {
          printJson({ database: ctx.config.database.file, ...counts });
          return EXIT.ok;
        }
        process.stdout.write(
          formatPairs([
            ["database", ctx.config.database.file],
            ["waiting", LANES.map((l) => `${l} ${counts.waitingByLane[l]}`).join(", ")],
            ...VIDEO_STATES.map((s): [string, number] => [s, counts.byState[s]]),
            ["total", counts.total],
          ]) + "\n",
        );
        return EXIT.ok;
      }),
    );
}
