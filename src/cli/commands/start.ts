import type { CommandHost } from "../command.js";

export function registerStart({ program, action }: CommandHost): void {
  program
    .command("start")
    .description("run the daemon: store, NATS (embedded unless nats.servers is set), relay, API and workers")
    .option("--no-workers", "run no workers in this process (other nodes run `vqd worker`)")
    .action(
      action(async (ctx, opts: { workers: boolean }) => {
        const logger = await ctx.logger();
        const { Daemon, runUntilSignalled } = await import("../../daemon/index.js");
        const daemon = await Daemon.start({ config: ctx.config, logger, workers: opts.workers });
        return runUntilSignalled(daemon, logger);
      }),
    );

  program
    .command("worker")
    .description("run workers only (no SQLite), pulling from the daemon's NATS and reporting to it")
    .action(
      action(async (ctx) => {
        const logger = await ctx.logger();
        const { WorkerNode, runUntilSignalled } = await import("../../daemon/index.js");
        const node = await WorkerNode.start(ctx.config, logger);
        return runUntilSignalled(node, logger);
      }),
    );
}
