/** `vqd start` as a child process, timed from spawn to its "vqd ready" log line. */
import { DAEMON_NODE_FLAGS } from "../shared/node-flags.js";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { childEnv } from "./context.js";
import { VQD_BIN } from "./environment.js";
import { now } from "./measure.js";

export interface StartedChild {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Milliseconds from spawn() to the "vqd ready" line. */
  readonly readyMs: number;
  /** SIGTERM, then waits for the exit; resolves with the milliseconds that took. */
  stop(): Promise<number>;
  kill(): void;
}

const live = new Set<ChildProcess>();
let hooked = false;

/** A profiling run that dies must not leave daemons behind. */
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const c of live) c.kill("SIGKILL");
  });
}

export function startDaemonChild(configFile: string, cwd: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<StartedChild> {
  hookExit();
  const tail: string[] = [];
  const remember = (line: string): void => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
  };
  const t0 = now();
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, VQD_BIN, "--config", configFile, "start"], { env: childEnv(), cwd, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void exited.then(() => live.delete(child));
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", remember);
  const stop = async (): Promise<number> => {
    const s = now();
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise<void>((r) => (timer = setTimeout(r, 15_000)))]);
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
    return now() - s;
  };
  return new Promise<StartedChild>((resolve, reject) => {
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      child.kill("SIGKILL");
      reject(new Error(`vqd start ${why}\n${tail.join("\n")}`));
    };
    const onAbort = (): void => fail("aborted: the profiling run is stopping");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => fail(`not ready after ${options.timeoutMs ?? 30_000} ms`), options.timeoutMs ?? 30_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      remember(line);
      if (settled || !line.includes('"msg":"vqd ready"')) return;
      const readyMs = now() - t0;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      resolve({ child, pid: child.pid as number, readyMs, stop, kill: () => child.kill("SIGKILL") });
    });
    child.once("error", (err) => fail(`could not be started: ${err.message}`));
    void exited.then(() => fail(`exited before it was ready (code ${child.exitCode}, signal ${child.signalCode})`));
  });
}

/** Milliseconds from spawn() to the exit of `node -e 0`: what any Node program costs to start. */
export function nodeBaselineMs(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn(process.execPath, ["-e", "0"], { env: childEnv(), stdio: "ignore" });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(now() - t0) : reject(new Error(`node -e 0 exited with ${code}`))));
  });
}
