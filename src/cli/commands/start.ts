import type { CommandHost } from "../command.js";
import type { CliContext } from "../context.js";
import type { Logger } from "../../shared/logger.js";

export function registerStart({ program, action }: CommandHost): void {
  program
    .command("start")
    .description("run the daemon: store, NATS (embedded unless nats.servers is set), relay, API and workers")
    .option("--no-workers", "run no workers in this process (other nodes run `vqd worker`)")
    .action(
      action(async (ctx, opts: { workers: boolean }) => {
        // Telemetry first (the OpenTelemetry SDK, when anything is exported), then the daemon's modules.
        const telemetry = await ctx.serviceTelemetry("daemon");
        const { Daemon } = await import("../../daemon/index.js");
        return runService(ctx, (logger) => Daemon.start({ config: ctx.config, logger, workers: opts.workers, telemetry }).catch(async (err: unknown) => {
          await telemetry.shutdown(2000);
          throw err;
        }));
      }),
    );

  program
    .command("worker")
    .description("run workers only (no SQLite), pulling from the daemon's NATS and reporting to it")
    .action(
      action(async (ctx) => {
        const telemetry = await ctx.serviceTelemetry("worker");
        const { WorkerNode } = await import("../../daemon/index.js");
        return runService(ctx, (logger) => WorkerNode.start(ctx.config, logger, undefined, telemetry).catch(async (err: unknown) => {
          await telemetry.shutdown(2000);
          throw err;
        }));
      }),
    );
}

/**
 * Starts a long-running service and keeps it until SIGTERM/SIGINT, telling systemd about it
 * when it runs under a Type=notify unit: READY=1 once started, WATCHDOG=1 pings, STATUS= lines
 * with the queue depth (daemon only), STOPPING=1 when shutdown begins.
 */
async function runService(
  ctx: CliContext,
  start: (logger: Logger) => Promise<{ stop(): Promise<void>; status?(): Promise<Record<string, unknown>> }>,
): Promise<number> {
  const logger = await ctx.logger();
  const { createNotifier, queueStatusText, runUntilSignalled } = await import("../../daemon/index.js");
  const notifier = createNotifier(process.env, { logger });
  notifier?.startWatchdog();
  const service = await start(logger);
  const status = service.status?.bind(service);
  const describe = async (): Promise<string> =>
    status ? queueStatusText((await status()) as unknown as Parameters<typeof queueStatusText>[0]) : "working";
  await notifier?.ready(await describe().catch(() => "ready"));
  if (status) notifier?.startStatus(describe);
  return runUntilSignalled(
    {
      async stop() {
        await notifier?.stopping("draining running jobs");
        try {
          await service.stop();
        } finally {
          await notifier?.close();
        }
      },
    },
    logger,
  );
}
