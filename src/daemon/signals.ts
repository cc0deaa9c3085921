import type { Logger } from "../shared/logger.js";

/**
 * Keeps a started service until SIGTERM or SIGINT, then stops it gracefully. A second signal
 * while stopping exits at once (code 1): the operator asked twice.
 */
export function runUntilSignalled(service: { stop(): Promise<void> }, logger: Logger): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, "second signal: exiting now");
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, "signal received; stopping");
      service.stop().then(
        () => {
          process.off("SIGTERM", onSignal);
          process.off("SIGINT", onSignal);
          resolve(0);
        },
        (err: Error) => {
          logger.error({ err: err.message }, "shutdown failed");
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}
