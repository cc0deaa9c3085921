import { LANES, VIDEO_STATES, type Lane, type VideoState } from "../../domain/index.js";
import { memoryGrowth, type MemoryGrowth } from "../../telemetry/snapshots.js";
import type { CommandHost } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { formatPairs, printJson } from "../output.js";

interface StatusJson {
  daemon: boolean;
  pid?: number;
  uptimeS?: number;
  depth: Record<Lane, number>;
  inFlight: number;
  states: Record<VideoState, number>;
  total: number;
  workers?: { size: number; busy: number; running: { videoId: string; step: string | null; percent?: number | null }[] };
  nats?: { ok: boolean; server?: string; embedded?: boolean; reconnects?: number; error?: string; lanes?: Record<Lane, { waiting: number; inFlight: number }> };
  database: { ok: boolean; file?: string; error?: string };
  /** Alerts raised right now (daemon only). */
  alerts?: { queueDepth: boolean; queueDepthThreshold: number };
  /** Growth per day across the stored memory snapshots of the daemon. */
  memory?: MemoryGrowth;
}

export function registerStatus({ program, action }: CommandHost): void {
  program
    .command("status")
    .description("queue depth per lane, jobs in flight, videos per state, workers, NATS and database health")
    .option("--json", "print JSON")
    .action(
      action(async (ctx, opts: { json?: boolean }) => {
        const { result, daemon } = await ctx.viaDaemon<"status", Omit<StatusJson, "daemon">>("status", {}, async (store) => {
          const counts = await store.counts();
          return {
            depth: counts.waitingByLane,
            inFlight: counts.byState.running,
            states: counts.byState,
            total: counts.total,
            database: { ok: true, file: ctx.config.database.file },
            memory: memoryGrowth(store.database),
          };
        });
        const status: StatusJson = { daemon, ...result };
        if (opts.json) {
          printJson(status);
          return EXIT.ok;
        }
        const pairs: [string, string | number | null][] = [
          ["daemon", daemon ? `running (pid ${status.pid}, up ${formatUptime(status.uptimeS ?? 0)})` : "not running (figures from the store)"],
          ["depth", LANES.map((l) => `${l} ${status.depth[l]}`).join(", ")],
          ["in flight", status.inFlight],
          ...VIDEO_STATES.filter((s) => s !== "queued" && s !== "running").map((s): [string, number] => [s, status.states[s]]),
          ["total", status.total],
        ];
        if (status.workers) {
          pairs.push(["workers", `${status.workers.busy} busy, ${status.workers.size - status.workers.busy} idle`]);
          for (const r of status.workers.running) pairs.push(["  running", `${r.videoId} (${r.step ?? "starting"}${typeof r.percent === "number" ? ` ${r.percent}%` : ""})`]);
        }
        if (status.nats) pairs.push(["nats", status.nats.ok ? `ok ${status.nats.server}${status.nats.embedded ? " (embedded)" : ""}, ${status.nats.reconnects} reconnects` : `FAIL ${status.nats.error}`]);
        pairs.push(["database", status.database.ok ? `ok ${status.database.file}` : `FAIL ${status.database.error}`]);
        if (status.alerts?.queueDepth) pairs.push(["alert", `queue depth above ${status.alerts.queueDepthThreshold}`]);
        if (status.memory) pairs.push(["memory", describeGrowth(status.memory)]);
        process.stdout.write(formatPairs(pairs) + "\n");
        return EXIT.ok;
      }),
    );
}

function describeGrowth(m: MemoryGrowth): string {
  if (m.snapshots === 0) return "no snapshots yet (vqd snapshot memory)";
  const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;
  const perDay = (n: number | null) => (n === null ? "?" : `${n >= 0 ? "+" : "-"}${mb(Math.abs(n))}/day`);
  const last = m.lastRss !== null ? `, last rss ${mb(m.lastRss)}` : "";
  if (m.snapshots < 2) return `1 snapshot (${m.last})${last}; growth needs two`;
  if (m.rssPerDay === null) return `${m.snapshots} snapshots within ${Math.round(m.spanS / 60)} min${last}; growth needs snapshots at least an hour apart`;
  return `rss ${perDay(m.rssPerDay)}, heap ${perDay(m.heapUsedPerDay)} over ${m.snapshots} snapshots since ${m.first?.slice(0, 10)}${last}`;
}

function formatUptime(s: number): string {
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}
