/**
 * Test harness: a real `nats-server` child on 127.0.0.1 and a free port, with its own temp
 * store dir. Call `startNatsServer()` in `before()` and `stop()` in `after()`.
 *
 *   const srv = await startNatsServer();               // JetStream on
 *   const srv = await startNatsServer({ args: ["--auth", "s3cret"] });
 *   await srv.kill9(); await srv.restart();            // crash + come back on the same port/store
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { freePort } from "./ports.js";

export interface StartNatsServerOptions {
  /** Enable JetStream (-js). Default true. */
  jetstream?: boolean;
  /** Extra nats-server arguments, e.g. ["--auth", "s3cret"]. */
  args?: string[];
  /** Port to use; default a free one. */
  port?: number;
  /** Store dir to use (kept on stop()); default a fresh temp dir (removed on stop()). */
  storeDir?: string;
  /** Binary to run. Default "nats-server". */
  binary?: string;
  /** How long to wait for "Server is ready". Default 10000. */
  readyTimeoutMs?: number;
}

export interface TestNatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** Pid of the current server process (changes after restart()); 0 when not running. */
  readonly pid: number;
  readonly running: boolean;
  /** Everything the current/last process wrote to stderr (last 200 lines). */
  stderr(): string;
  /** SIGTERM, wait for exit, remove the temp store dir (unless the caller provided it). Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, wait for exit; the store dir is kept so restart() recovers it. */
  kill9(): Promise<void>;
  /** Start again on the same port and store dir (stops the running process first, if any). */
  restart(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** If a test run dies without calling stop(), do not leave servers behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const c of live) {
      try {
        c.kill("SIGKILL");
      } catch {
        // gone
      }
    }
  });
}

export async function startNatsServer(opts: StartNatsServerOptions = {}): Promise<TestNatsServer> {
  const port = opts.port ?? (await freePort());
  const ownsStore = opts.storeDir === undefined;
  const storeDir = opts.storeDir ?? (await mkdtemp(join(tmpdir(), "vqd-nats-test-")));
  const server = new Harness(
    opts.binary ?? "nats-server",
    port,
    storeDir,
    ownsStore,
    opts.jetstream ?? true,
    opts.args ?? [],
    opts.readyTimeoutMs ?? 10_000,
  );
  try {
    await server.launch();
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

class Harness implements TestNatsServer {
  readonly url: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private lines: string[] = [];
  private stopPromise: Promise<void> | undefined;

  constructor(
    private readonly binary: string,
    readonly port: number,
    readonly storeDir: string,
    private readonly ownsStore: boolean,
    private readonly jetstream: boolean,
    private readonly extraArgs: string[],
    private readonly readyTimeoutMs: number,
  ) {
    this.url = `nats://127.0.0.1:${port}`;
  }

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  stderr(): string {
    return this.lines.join("\n");
  }

  async launch(): Promise<void> {
    installExitHook();
    await mkdir(this.storeDir, { recursive: true });
    const args = ["-a", "127.0.0.1", "-p", String(this.port), "-sd", this.storeDir];
    if (this.jetstream) args.push("-js");
    args.push(...this.extraArgs);

    this.lines = [];
    const child = spawn(this.binary, args, { stdio: ["ignore", "ignore", "pipe"] });
    this.child = child;
    live.add(child);
    this.exited = new Promise<void>((resolve) => {
      child.once("close", () => {
        live.delete(child);
        if (this.child === child) this.child = undefined;
        resolve();
      });
    });

    await new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const explain = (why: string): Error =>
        new Error(`nats-server (${this.binary} ${args.join(" ")}) ${why}\n--- stderr ---\n${this.stderr()}`);
      const timer = setTimeout(() => {
        finish(explain(`not ready after ${this.readyTimeoutMs}ms`));
        child.kill("SIGKILL");
      }, this.readyTimeoutMs);

      const rl = createInterface({ input: child.stderr!, crlfDelay: Infinity });
      rl.on("line", (line) => {
        this.lines.push(line);
        if (this.lines.length > 200) this.lines.shift();
        if (line.includes("Server is ready")) finish();
      });
      child.once("error", (err) => finish(explain(`could not be started: ${err.message}`)));
      void this.exited.then(() => finish(explain(`exited before it was ready (code ${child.exitCode}, signal ${child.signalCode})`)));
    });
  }

  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      await this.terminate("SIGTERM");
      if (this.ownsStore) await rm(this.storeDir, { recursive: true, force: true });
    })();
    return this.stopPromise;
  }

  async kill9(): Promise<void> {
    await this.terminate("SIGKILL");
  }

  async restart(): Promise<void> {
    await this.terminate("SIGTERM");
    this.stopPromise = undefined;
    await this.launch();
  }

  private async terminate(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 10_000))),
    ]);
    clearTimeout(timer);
    if (late) {
      child.kill("SIGKILL");
      await this.exited;
    }
  }
}
