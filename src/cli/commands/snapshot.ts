import type { MemorySnapshot } from "../../telemetry/index.js";
import type { CommandHost } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { formatPairs, printJson } from "../output.js";

/** `vqd snapshot memory`: the daemon's memory and V8 heap statistics, stored and sent as metrics. */
export function registerSnapshot({ program, action }: CommandHost): void {
  const snapshot = program.command("snapshot").description("take a snapshot of the daemon's state");
  snapshot
    .command("memory")
    .description("record the daemon's memory and V8 heap statistics (stored in the database, sent as metrics); `vqd status` shows the growth per day")
    .option("--heap", "also write a V8 .heapsnapshot file (pauses the daemon about a second per 100 MB of heap)")
    .option("--json", "print JSON")
    .action(
      action(async (ctx, opts: { heap?: boolean; json?: boolean }) => {
        const { result, daemon } = await ctx.viaDaemon<"snapshot", MemorySnapshot>("snapshot", { kind: "memory", ...(opts.heap ? { heap: true } : {}) }, async (store) => {
          // No daemon: the snapshot is of this process, recorded under role "cli" (not counted in
          // the daemon's growth figures).
          const { takeMemorySnapshot } = await import("../../telemetry/index.js");
          const s = ctx.config.snapshots;
          const { join } = await import("node:path");
          return takeMemorySnapshot({
            db: store.database,
            role: "cli",
            retainRows: s.retainRows,
            heapSnapshot: opts.heap ? { dir: s.heapSnapshotDir || join(ctx.config.dataDir, "snapshots"), retain: s.heapSnapshotRetain } : null,
          });
        });
        if (opts.json) {
          printJson({ daemon, ...result });
          return EXIT.ok;
        }
        const mb = (n: number | undefined) => (typeof n === "number" ? `${(n / 1048576).toFixed(1)} MB` : "-");
        const pairs: [string, string | number | null][] = [
          ["snapshot", `#${result.id} at ${result.takenAt}`],
          ["process", `${result.role} pid ${result.pid}, up ${Math.round(result.uptimeS)} s`],
          ["rss", mb(result.rss)],
          ["heap used", `${mb(result.heapUsed)} of ${mb(result.heapTotal)} (limit ${mb(result.heap.heap_size_limit)})`],
          ["external", `${mb(result.external)} (array buffers ${mb(result.arrayBuffers)})`],
        ];
        if (result.heapSnapshotFile) pairs.push(["heap snapshot", result.heapSnapshotFile]);
        process.stdout.write(formatPairs(pairs) + "\n");
        if (!daemon) process.stderr.write("vqd: the daemon is not running; this is the memory of the vqd command itself\n");
        return EXIT.ok;
      }),
    );
}
