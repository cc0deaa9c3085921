/**
 * Checks enqueued paths (validate-path.ts) in a worker thread. From the event loop each path cost
 * three asynchronous file-system calls (realpath, stat, access) through libuv's thread pool: about
 * 70 us of CPU per path in all, a fifth of a no-op job, and a hung network mount would have tied
 * up the pool that every other file operation of the daemon shares. In the worker the same calls
 * are synchronous (a few microseconds each) and a batch is one message each way.
 *
 * A batch that gets no answer within CHECK_TIMEOUT_MS (a hung mount) fails its paths as
 * "unreadable" and the worker is abandoned; the next batch gets a new one. An idle worker is
 * ended after IDLE_MS, so an idle daemon does not keep the thread's memory.
 */
import { Worker } from "node:worker_threads";
import { InputError, type InputProblem } from "./errors.js";

export type PathOutcome = { readonly path: string } | { readonly error: InputError };

/** What the worker answers for one path. */
export type WorkerOutcome = { readonly path: string } | { readonly problem: InputProblem; readonly message: string };

export interface CheckRequest {
  readonly id: number;
  readonly inputs: readonly unknown[];
  readonly allowedRoots: readonly string[];
  readonly cwd: string;
}

export interface CheckReply {
  readonly id: number;
  readonly outcomes?: readonly WorkerOutcome[];
  readonly failure?: string;
}

const CHECK_TIMEOUT_MS = 30_000;
const IDLE_MS = 30_000;
const WORKER_URL = new URL("./path-checker-worker.js", import.meta.url);

interface Pending {
  readonly worker: Worker;
  readonly inputs: readonly string[];
  readonly resolve: (outcomes: PathOutcome[]) => void;
  readonly timer: NodeJS.Timeout;
}

export class PathChecker {
  readonly #timeoutMs: number;
  readonly #idleMs: number;
  #worker: Worker | null = null;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  #idle: NodeJS.Timeout | undefined;

  constructor(options: { timeoutMs?: number; idleMs?: number } = {}) {
    this.#timeoutMs = options.timeoutMs ?? CHECK_TIMEOUT_MS;
    this.#idleMs = options.idleMs ?? IDLE_MS;
  }

  /** True while the worker thread exists (tests). */
  get running(): boolean {
    return this.#worker !== null;
  }

  /** Checks each input (resolved against cwd); one outcome per input, in order. Never rejects. */
  check(inputs: readonly string[], allowedRoots: readonly string[], cwd: string): Promise<PathOutcome[]> {
    if (inputs.length === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const id = this.#nextId++;
      let worker: Worker;
      try {
        worker = this.#ensure();
      } catch (err) {
        resolve(inputs.map((i) => ({ error: unreadable(i, `cannot check ${JSON.stringify(i)}: ${(err as Error).message}`) })));
        return;
      }
      const timer = setTimeout(() => this.#abandon(worker, `no answer from the file system after ${this.#timeoutMs} ms (a hung mount?)`), this.#timeoutMs);
      this.#pending.set(id, { worker, inputs, resolve, timer });
      clearTimeout(this.#idle);
      worker.ref();
      const request: CheckRequest = { id, inputs, allowedRoots, cwd };
      worker.postMessage(request);
    });
  }

  /** Ends the worker thread (tests, shutdown); a later check starts a new one. */
  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = null;
    clearTimeout(this.#idle);
    if (w) {
      this.#fail(w, "the path checker was closed");
      await w.terminate();
    }
  }

  #ensure(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(WORKER_URL);
    worker.on("message", (reply: CheckReply) => this.#answer(reply));
    worker.on("error", (err) => {
      if (this.#worker === worker) this.#worker = null;
      this.#fail(worker, `the path checker failed: ${err.message}`);
    });
    worker.on("exit", () => {
      if (this.#worker === worker) this.#worker = null;
      this.#fail(worker, "the path checker stopped");
    });
    this.#worker = worker;
    return worker;
  }

  #answer(reply: CheckReply): void {
    const p = this.#pending.get(reply.id);
    if (!p) return;
    this.#pending.delete(reply.id);
    clearTimeout(p.timer);
    p.resolve(
      p.inputs.map((input, i): PathOutcome => {
        const o = reply.outcomes?.[i];
        if (!o) return { error: unreadable(input, `cannot check ${JSON.stringify(input)}: ${reply.failure ?? "no answer"}`) };
        return "path" in o ? { path: o.path } : { error: new InputError(o.problem, String(input), o.message) };
      }),
    );
    if (this.#pending.size === 0) this.#rest();
  }

  /** Nothing pending: let the process exit, and end the thread if it stays idle. */
  #rest(): void {
    const w = this.#worker;
    if (!w) return;
    w.unref();
    clearTimeout(this.#idle);
    this.#idle = setTimeout(() => {
      if (this.#worker === w && this.#pending.size === 0) {
        this.#worker = null;
        void w.terminate();
      }
    }, this.#idleMs);
    this.#idle.unref();
  }

  /** The worker is stuck (a syscall that does not return): fail what waits on it, start afresh next time. */
  #abandon(worker: Worker, reason: string): void {
    if (this.#worker === worker) this.#worker = null;
    this.#fail(worker, reason);
    worker.unref();
    void worker.terminate();
  }

  /** Fails every check sent to `worker` that is still waiting. */
  #fail(worker: Worker, reason: string): void {
    for (const [id, p] of this.#pending) {
      if (p.worker !== worker) continue;
      this.#pending.delete(id);
      clearTimeout(p.timer);
      p.resolve(p.inputs.map((input) => ({ error: unreadable(input, `cannot check ${JSON.stringify(input)}: ${reason}`) })));
    }
  }
}

function unreadable(input: string, message: string): InputError {
  return new InputError("unreadable", String(input), message);
}

let shared: PathChecker | undefined;

/** The process's checker (one worker thread, started on first use). */
export function sharedPathChecker(): PathChecker {
  shared ??= new PathChecker();
  return shared;
}

/**
 * Resolves a video path the way the daemon will open it and checks that it is a readable regular
 * file inside one of the allowed roots (see checkVideoPathSync). Returns the real path, which is
 * what gets recorded; throws an InputError naming what is wrong.
 */
export async function validateVideoPath(input: string, allowedRoots: readonly string[], cwd = process.cwd()): Promise<string> {
  const [outcome] = (await sharedPathChecker().check([input], allowedRoots, cwd)) as [PathOutcome];
  if ("error" in outcome) throw outcome.error;
  return outcome.path;
}
