/** Timing helpers shared by the bench groups. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Subjects } from "../../src/bus/index.js";

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Runs `op(0..n-1)` back to back and returns microseconds per operation. */
export function usPerOp(n: number, op: (i: number) => void): number {
  const start = performance.now();
  for (let i = 0; i < n; i++) op(i);
  return ((performance.now() - start) * 1000) / n;
}

/** Milliseconds taken by one (possibly async) call. */
export async function msOnce(fn: () => unknown): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/**
 * Runs `reps` repetitions of two contenders, alternating which goes first (A B, B A, A B...)
 * so that drift in machine load hits both about equally. Returns each contender's samples.
 */
export async function alternate(
  reps: number,
  a: (rep: number) => number | Promise<number>,
  b: (rep: number) => number | Promise<number>,
): Promise<{ a: number[]; b: number[] }> {
  const out = { a: [] as number[], b: [] as number[] };
  for (let rep = 0; rep < reps; rep++) {
    if (rep % 2 === 0) {
      out.a.push(await a(rep));
      out.b.push(await b(rep));
    } else {
      out.b.push(await b(rep));
      out.a.push(await a(rep));
    }
  }
  return out;
}

/** A fresh temporary directory; `remove()` deletes it with everything in it. */
export function tempDir(prefix: string): { readonly path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A small deterministic PRNG (xorshift32), shared with the profiler's workloads. */
export { seededRandom } from "../../src/profiler/stress.js";

/** Fisher-Yates shuffle with the given random source; returns a new array. */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = out[i] as T;
    out[i] = out[j] as T;
    out[j] = t;
  }
  return out;
}

export interface Completions {
  /** Resolves once `n` distinct videos have a VideoCompleted event. */
  readonly done: Promise<void>;
  /** Distinct videos seen completing. */
  readonly ids: ReadonlySet<string>;
  /** VideoCompleted events received (a video completing twice would count twice). */
  events(): number;
  /** performance.now() when the n-th distinct video completed. */
  lastAt(): number;
  /** Unsubscribes. */
  stop(): void;
}

/** Listens on `<prefix>.events.VideoCompleted` for `n` videos (subscribed and flushed when it returns). */
export async function watchCompletions(nc: NatsConnection, subj: Subjects, n: number): Promise<Completions> {
  const ids = new Set<string>();
  let events = 0;
  let lastAt = 0;
  let resolve: () => void = () => {};
  const done = new Promise<void>((r) => (resolve = r));
  const sub = nc.subscribe(subj.event("VideoCompleted"), {
    callback: (_err, msg) => {
      events++;
      ids.add((JSON.parse(new TextDecoder().decode(msg.data)) as { videoId: string }).videoId);
      if (ids.size === n && lastAt === 0) {
        lastAt = performance.now();
        resolve();
      }
    },
  });
  await nc.flush();
  return { done, ids, events: () => events, lastAt: () => lastAt, stop: () => sub.unsubscribe() };
}

/** Waits for `done`, at most timeoutMs; then fails with what `describe` says of the state. */
export async function within(done: Promise<void>, timeoutMs: number, describe: () => string | Promise<string>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([done.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs)))]);
  clearTimeout(timer);
  if (timedOut) throw new Error(`not done after ${timeoutMs} ms: ${await describe()}`);
}

/** CPU seconds of a process from /proc/<pid>/stat: its own, and of its children it has waited for. */
export function procCpu(pid: number | "self"): { own: number; children: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
    // utime, stime, cutime, cstime: fields 14-17 of stat(5), in clock ticks (USER_HZ = 100).
    return { own: ((f[11] ?? 0) + (f[12] ?? 0)) / 100, children: ((f[13] ?? 0) + (f[14] ?? 0)) / 100 };
  } catch {
    return { own: Number.NaN, children: Number.NaN };
  }
}

/** Starts CPU accounting; the returned function gives microseconds per job since then. */
export function jobCpuMeter(serverPid: number): (jobs: number) => { node: number; server: number } {
  const node0 = process.cpuUsage();
  const server0 = procCpu(serverPid).own;
  return (jobs) => {
    const node = process.cpuUsage(node0);
    return { node: (node.user + node.system) / jobs, server: ((procCpu(serverPid).own - server0) * 1_000_000) / jobs };
  };
}
