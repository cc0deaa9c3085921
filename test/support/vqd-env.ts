/**
 * A throwaway vqd installation for integration tests: temp data dir, an allowed videos folder
 * with small files in it, and the VQD_* environment that points the daemon and the CLI there.
 *
 *   const env = await makeVqdEnv({ natsUrl: srv.url, extra: { VQD_WORKERS__COUNT: "1" } });
 *   const config = env.config();                      // loadConfig() over that environment
 *   const files = await env.videos(10);               // 10 files under the allowed root
 *   const r = await env.cli(["list", "--json"]);      // the built CLI as a child process
 *   const d = env.spawnDaemon();                      // `vqd start` as a child process
 *   await env.cleanup();
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig, type Config } from "../../src/config/index.js";

/** The built CLI entry point (tests run from dist/test/..., the CLI is dist/src/bin/vqd.js). */
export const VQD_BIN = resolve(dirname(fileURLToPath(import.meta.url)), "../../src/bin/vqd.js");

export interface VqdEnvOptions {
  /** NATS server URL; omit to let the daemon run its embedded server. */
  readonly natsUrl?: string;
  /** Subject prefix and stream name, unique per suite by default so suites never meet. */
  readonly prefix?: string;
  /** More VQD_* variables (strings, as the environment would carry them). */
  readonly extra?: Readonly<Record<string, string>>;
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface VqdEnv {
  readonly root: string;
  readonly dataDir: string;
  readonly videosDir: string;
  readonly env: NodeJS.ProcessEnv;
  config(): Config;
  /** Creates n small files under the allowed root and returns their absolute paths. */
  videos(n: number, prefix?: string): Promise<string[]>;
  cli(args: readonly string[], options?: { timeoutMs?: number }): Promise<CliResult>;
  /** `vqd start` (or other args) as a child process; stdout/stderr collected. `nodeFlags` go before the script (e.g. DAEMON_NODE_FLAGS). */
  spawnDaemon(args?: readonly string[], options?: { nodeFlags?: readonly string[] }): DaemonProcess;
  cleanup(): Promise<void>;
}

export interface DaemonProcess {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves once the log says "vqd ready" (or rejects with the output on exit/timeout). */
  ready(timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code (or signal name). */
  exited(): Promise<number | string>;
}

let counter = 0;

export async function makeVqdEnv(options: VqdEnvOptions = {}): Promise<VqdEnv> {
  const root = await mkdtemp(join(tmpdir(), "vqd-it-"));
  const dataDir = join(root, "data");
  const videosDir = join(root, "videos");
  await mkdir(videosDir, { recursive: true });
  const prefix = options.prefix ?? `vqt${process.pid}x${++counter}`;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    VQD_DATADIR: dataDir,
    VQD_ALLOWEDROOTS: `[${videosDir}]`,
    VQD_NATS__SUBJECTPREFIX: prefix,
    VQD_NATS__STREAM: prefix.toUpperCase(),
    VQD_LOGGING__FORMAT: "json",
    ...(options.natsUrl ? { VQD_NATS__SERVERS: options.natsUrl } : {}),
    ...options.extra,
  };
  let made = 0;
  const children = new Set<ChildProcess>();
  return {
    root,
    dataDir,
    videosDir,
    env,
    config: () => loadConfig({ env, cwd: root }),
    async videos(n, namePrefix = "clip") {
      const paths: string[] = [];
      for (let i = 0; i < n; i++) {
        const p = join(videosDir, `${namePrefix}-${String(++made).padStart(5, "0")}.mp4`);
        await writeFile(p, `not really a video ${made}\n`);
        paths.push(p);
      }
      return paths;
    },
    cli(args, o = {}) {
      return new Promise((resolvePromise, reject) => {
        const child = spawn(process.execPath, [VQD_BIN, ...args], { env, cwd: root, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => child.kill("SIGKILL"), o.timeoutMs ?? 30_000);
        child.on("error", reject);
        child.on("close", (code) => {
          clearTimeout(timer);
          resolvePromise({ code, stdout, stderr });
        });
      });
    },
    spawnDaemon(args = ["start"], o = {}) {
      const child = spawn(process.execPath, [...(o.nodeFlags ?? []), VQD_BIN, ...args], { env, cwd: root, stdio: ["ignore", "pipe", "pipe"] });
      children.add(child);
      let out = "";
      const listeners = new Set<() => void>();
      const onData = (d: Buffer): void => {
        out += d.toString();
        for (const l of listeners) l();
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      const exit = new Promise<number | string>((r) =>
        child.on("exit", (code, signal) => {
          children.delete(child);
          for (const l of listeners) l();
          r(code ?? signal ?? -1);
        }),
      );
      return {
        child,
        output: () => out,
        exited: () => exit,
        ready(timeoutMs = 15_000) {
          return new Promise<void>((res, rej) => {
            const check = (): void => {
              if (/"msg":"vqd (worker )?ready"/.test(out)) {
                cleanupListener();
                res();
              } else if (child.exitCode !== null || child.signalCode !== null) {
                cleanupListener();
                rej(new Error(`daemon exited before ready:\n${out}`));
              }
            };
            const timer = setTimeout(() => {
              cleanupListener();
              rej(new Error(`daemon not ready after ${timeoutMs} ms:\n${out}`));
            }, timeoutMs);
            const cleanupListener = (): void => {
              clearTimeout(timer);
              listeners.delete(check);
            };
            listeners.add(check);
            check();
          });
        },
      };
    },
    async cleanup() {
      for (const c of children) c.kill("SIGKILL");
      await rm(root, { recursive: true, force: true });
    },
  };
}
