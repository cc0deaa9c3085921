/**
 * Memory snapshots: the process's memory and V8 heap statistics, stored in SQLite
 * (`memory_snapshots`) and sent as metrics; optionally a `.heapsnapshot` file. Taken by
 * `vqd snapshot memory` and by the weekly schedule (`schedules.memorySnapshot`), whose task
 * calls takeMemorySnapshot(). `vqd status` shows the growth per day across the stored rows.
 */
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { getHeapStatistics, writeHeapSnapshot } from "node:v8";
import type { Database } from "../store/index.js";
import type { TelemetryRole } from "./settings.js";
import type { Telemetry } from "./types.js";

export interface MemorySnapshot {
  readonly id: number;
  readonly takenAt: string;
  readonly role: string;
  readonly pid: number;
  readonly uptimeS: number;
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  /** v8.getHeapStatistics() at the time. */
  readonly heap: Readonly<Record<string, number>>;
  /** Path of the .heapsnapshot file written with it, if any. */
  readonly heapSnapshotFile: string | null;
}

export interface HeapSnapshotOptions {
  /** Folder the .heapsnapshot files go to (created if missing). */
  readonly dir: string;
  /** Files of this role kept; older ones are deleted after writing a new one. >= 1. */
  readonly retain: number;
}

export interface MemorySnapshotOptions {
  readonly db: Database;
  readonly role?: TelemetryRole;
  readonly telemetry?: Telemetry;
  /** Also write a heap snapshot (blocks the process for about a second per 100 MB of heap). */
  readonly heapSnapshot?: HeapSnapshotOptions | null;
  /** Rows kept (the oldest beyond this are deleted); 0 keeps all. */
  readonly retainRows?: number;
  readonly now?: Date;
}

interface Row {
  id: number;
  taken_at: string;
  role: string;
  pid: number;
  uptime_s: number;
  rss: number;
  heap_total: number;
  heap_used: number;
  external: number;
  array_buffers: number;
  heap_stats: string;
  heap_snapshot: string | null;
}

/** Takes a snapshot of this process's memory, stores it, and records it as metrics. */
export async function takeMemorySnapshot(options: MemorySnapshotOptions): Promise<MemorySnapshot> {
  const { db } = options;
  const role = options.role ?? "daemon";
  const now = options.now ?? new Date();
  // Figures first: writing a heap snapshot grows the process for a while.
  const mem = process.memoryUsage();
  const heap = { ...getHeapStatistics() } as unknown as Record<string, number>;
  const heapSnapshotFile = options.heapSnapshot ? writeHeapFile(options.heapSnapshot, role, now) : null;
  const row = {
    taken_at: now.toISOString(),
    role,
    pid: process.pid,
    uptime_s: Math.round(process.uptime() * 1000) / 1000,
    rss: mem.rss,
    heap_total: mem.heapTotal,
    heap_used: mem.heapUsed,
    external: mem.external,
    array_buffers: mem.arrayBuffers,
    heap_stats: JSON.stringify(heap),
    heap_snapshot: heapSnapshotFile,
  };
  const raw = db.raw;
  const id = raw.transaction(() => {
    const r = raw
      .prepare(
        `INSERT INTO memory_snapshots (taken_at, role, pid, uptime_s, rss, heap_total, heap_used, external, array_buffers, heap_stats, heap_snapshot)
         VALUES (@taken_at, @role, @pid, @uptime_s, @rss, @heap_total, @heap_used, @external, @array_buffers, @heap_stats, @heap_snapshot)`,
      )
      .run(row);
    const keep = options.retainRows ?? 0;
    if (keep > 0) raw.prepare("DELETE FROM memory_snapshots WHERE id NOT IN (SELECT id FROM memory_snapshots ORDER BY id DESC LIMIT ?)").run(keep);
    return Number(r.lastInsertRowid);
  })();
  options.telemetry?.memorySnapshot({
    rss: mem.rss,
    heap_total: mem.heapTotal,
    heap_used: mem.heapUsed,
    external: mem.external,
    array_buffers: mem.arrayBuffers,
    heap_size_limit: heap.heap_size_limit ?? 0,
    malloced_memory: heap.malloced_memory ?? 0,
    total_physical_size: heap.total_physical_size ?? 0,
  });
  return toSnapshot({ id, ...row });
}

/** Stored snapshots, oldest first (of one role, or all). */
export function listMemorySnapshots(db: Database, options: { role?: string; limit?: number } = {}): MemorySnapshot[] {
  const limit = options.limit ?? 10_000;
  const rows = options.role
    ? db.raw.prepare<[string, number], Row>("SELECT * FROM (SELECT * FROM memory_snapshots WHERE role = ? ORDER BY id DESC LIMIT ?) ORDER BY id").all(options.role, limit)
    : db.raw.prepare<[number], Row>("SELECT * FROM (SELECT * FROM memory_snapshots ORDER BY id DESC LIMIT ?) ORDER BY id").all(limit);
  return rows.map(toSnapshot);
}

export interface MemoryGrowth {
  readonly snapshots: number;
  readonly first: string | null;
  readonly last: string | null;
  readonly lastRss: number | null;
  readonly lastHeapUsed: number | null;
  /** Seconds from the first snapshot to the last. */
  readonly spanS: number;
  /**
   * Least-squares slope across the snapshots, bytes per day; null with fewer than two snapshots
   * or when they span less than an hour (a slope over minutes says nothing about a day).
   */
  readonly rssPerDay: number | null;
  readonly heapUsedPerDay: number | null;
}

const MIN_GROWTH_SPAN_S = 3600;

/** Growth per day across the stored snapshots of the daemon (what `vqd status` shows). */
export function memoryGrowth(db: Database, role = "daemon"): MemoryGrowth {
  let snaps: MemorySnapshot[];
  try {
    snaps = listMemorySnapshots(db, { role });
  } catch {
    snaps = []; // a database from before the table existed, opened read-only
  }
  const last = snaps[snaps.length - 1];
  const spanS = snaps.length > 1 ? (Date.parse(last?.takenAt ?? "") - Date.parse(snaps[0]?.takenAt ?? "")) / 1000 : 0;
  const enough = spanS >= MIN_GROWTH_SPAN_S;
  return {
    snapshots: snaps.length,
    first: snaps[0]?.takenAt ?? null,
    last: last?.takenAt ?? null,
    lastRss: last?.rss ?? null,
    lastHeapUsed: last?.heapUsed ?? null,
    spanS,
    rssPerDay: enough ? growthPerDay(snaps.map((s) => [Date.parse(s.takenAt), s.rss])) : null,
    heapUsedPerDay: enough ? growthPerDay(snaps.map((s) => [Date.parse(s.takenAt), s.heapUsed])) : null,
  };
}

/** Least-squares slope of [epoch ms, value] points, in value per day; null when undefined. */
export function growthPerDay(points: readonly (readonly [number, number])[]): number | null {
  if (points.length < 2) return null;
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const [x, y] of points) {
    sxx += (x - mx) ** 2;
    sxy += (x - mx) * (y - my);
  }
  if (sxx === 0) return null;
  return (sxy / sxx) * 86_400_000;
}

function toSnapshot(r: Row): MemorySnapshot {
  let heap: Record<string, number> = {};
  try {
    heap = JSON.parse(r.heap_stats) as Record<string, number>;
  } catch {
    // keep {}
  }
  return {
    id: r.id,
    takenAt: r.taken_at,
    role: r.role,
    pid: r.pid,
    uptimeS: r.uptime_s,
    rss: r.rss,
    heapTotal: r.heap_total,
    heapUsed: r.heap_used,
    external: r.external,
    arrayBuffers: r.array_buffers,
    heap,
    heapSnapshotFile: r.heap_snapshot,
  };
}

function writeHeapFile(o: HeapSnapshotOptions, role: string, now: Date): string {
  mkdirSync(o.dir, { recursive: true });
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "_").slice(0, 15);
  const file = writeHeapSnapshot(join(o.dir, `vqd-${role}-${stamp}-${process.pid}.heapsnapshot`));
  const mine = readdirSync(o.dir)
    .filter((f) => f.startsWith(`vqd-${role}-`) && f.endsWith(".heapsnapshot"))
    .map((f) => ({ f, at: statSync(join(o.dir, f)).mtimeMs }))
    .sort((a, b) => b.at - a.at || b.f.localeCompare(a.f));
  for (const old of mine.slice(Math.max(1, o.retain))) rmSync(join(o.dir, old.f), { force: true });
  return file;
}
