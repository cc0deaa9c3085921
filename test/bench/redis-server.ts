/**
 * A throwaway `redis-server` for the BullMQ baseline: 127.0.0.1, a free port, its own temp dir,
 * persistence chosen by the caller. Never the system server on 6379.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { freePort } from "../support/ports.js";
import { tempDir } from "./measure.js";

export interface BenchRedis {
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  /** The persistence settings it runs with, as passed on the command line. */
  readonly persistence: string;
  stop(): Promise<void>;
}

/** appendonly yes + appendfsync everysec (no RDB snapshots): the analogue of SQLite WAL + synchronous=NORMAL. */
export const AOF_EVERYSEC = ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""] as const;

export async function startRedis(persistence: readonly string[] = AOF_EVERYSEC, binary = "redis-server"): Promise<BenchRedis> {
  const port = await freePort();
  if (port === 6379) throw new Error("refusing port 6379");
  const dir = tempDir("vqd-bench-redis-");
  const args = ["--bind", "127.0.0.1", "--port", String(port), "--dir", dir.path, "--protected-mode", "yes", "--daemonize", "no", "--logfile", "", ...persistence];
  const child: ChildProcess = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const kill = (): void => {
    child.kill("SIGKILL");
  };
  process.once("exit", kill);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server not ready after 10 s:\n${out}`)), 10_000);
      const onData = (d: Buffer): void => {
        out += d.toString();
        if (out.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(new Error(`redis-server could not be started: ${err.message}`));
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited before it was ready:\n${out}`));
      });
    });
  } catch (err) {
    kill();
    await exited;
    process.removeListener("exit", kill);
    dir.remove();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    host: "127.0.0.1",
    port,
    pid: child.pid ?? 0,
    persistence: persistence.map((a) => (a === "" ? '""' : a)).join(" "),
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill("SIGTERM");
          const late = setTimeout(kill, 10_000);
          await exited;
          clearTimeout(late);
        }
        process.removeListener("exit", kill);
        dir.remove();
      })();
      return stopping;
    },
  };
}
