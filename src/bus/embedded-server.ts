/**
 * The embedded NATS server: a `nats-server` child process with JetStream, bound to loopback,
 * supervised by the daemon (restarted with capped backoff if it dies) and advertised to the
 * CLI through a small JSON runtime file.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { readFileSync, unlinkSync } from "node:fs";
import { dirname, join, resolve as resolvePath } from "node:path";
import { createInterface } from "node:readline";
import { NatsServerNotFoundError, NatsServerStartError } from "./errors.js";
import { silentLogger, type BusLogger } from "./logger.js";
import { findFreePort, isPortFree } from "./ports.js";

export interface EmbeddedNatsServerOptions {
  /** Path or name of the `nats-server` binary. Default "nats-server" (looked up in PATH). */
  binary?: string;
  /** Loopback address to bind. Default "127.0.0.1"; non-loopback addresses are refused. */
  host?: string;
  /** Preferred client port; if taken, a free one is used instead. 0 = any free port. */
  port: number;
  /** JetStream store directory (created if missing). */
  storeDir: string;
  /** Where to write `{ url, pid, port, startedAt }` for the CLI (directory created if missing). */
  runtimeFile: string;
  /** nats-server's own pid file. Default `<storeDir>/nats-server.pid`. */
  pidFile?: string;
  logger?: BusLogger;
  /** How long to wait for "Server is ready". Default 30000. */
  readyTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL. Default 10000. */
  stopTimeoutMs?: number;
  /** Extra arguments appended to the nats-server command line. */
  extraArgs?: string[];
  /** Called after the server was restarted following an unexpected exit. */
  onRestart?: (info: EmbeddedRestartInfo) => void;
  /** Called when the server exits unexpectedly (before a restart is scheduled). */
  onExit?: (info: EmbeddedExitInfo) => void;
}

/** Contents of the runtime file. */
export interface EmbeddedRuntimeInfo {
  url: string;
  pid: number;
  port: number;
  /** ISO-8601 time at which this server process became ready. */
  startedAt: string;
}

export interface EmbeddedExitInfo {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Last lines the server wrote to stderr. */
  stderrTail: string;
}

export interface EmbeddedRestartInfo extends EmbeddedRuntimeInfo {
  /** Restarts so far, including this one. */
  restarts: number;
  /** Backoff waited before this restart. */
  delayMs: number;
}

const INITIAL_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
/** A server that stayed up this long resets the backoff. */
const STABLE_AFTER_MS = 10_000;
const STDERR_TAIL_LINES = 40;
const LAUNCH_ATTEMPTS = 3;

interface Launched {
  child: ChildProcess;
  pid: number;
  port: number;
  startedAt: Date;
  tail: string[];
}

export class EmbeddedNatsServer {
  private readonly binary: string;
  private readonly host: string;
  private readonly requestedPort: number;
  private readonly storeDir: string;
  private readonly runtimeFile: string;
  private readonly pidFile: string;
  private readonly logger: BusLogger;
  private readonly readyTimeoutMs: number;
  private readonly stopTimeoutMs: number;
  private readonly extraArgs: string[];
  private readonly onRestart: ((info: EmbeddedRestartInfo) => void) | undefined;
  private readonly onExit: ((info: EmbeddedExitInfo) => void) | undefined;

  private current: Launched | undefined;
  private actualPort = 0;
  private restartCount = 0;
  private backoffMs = INITIAL_BACKOFF_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private launchedOnce = false;
  private startPromise: Promise<EmbeddedRuntimeInfo> | undefined;
  private stopPromise: Promise<void> | undefined;
  private pendingWrite: Promise<void> = Promise.resolve();
  /** Every child we spawned that has not closed yet, with a promise for its close. */
  private readonly children = new Map<ChildProcess, Promise<void>>();
  private readonly exitHook = (): void => this.killAllSync();

  constructor(opts: EmbeddedNatsServerOptions) {
    this.binary = opts.binary ?? "nats-server";
    this.host = opts.host ?? "127.0.0.1";
    this.requestedPort = opts.port;
    this.storeDir = resolvePath(opts.storeDir);
    this.runtimeFile = resolvePath(opts.runtimeFile);
    this.pidFile = resolvePath(opts.pidFile ?? join(this.storeDir, "nats-server.pid"));
    this.logger = opts.logger ?? silentLogger;
    this.readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 10_000;
    this.extraArgs = [...(opts.extraArgs ?? [])];
    this.onRestart = opts.onRestart;
    this.onExit = opts.onExit;
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
      throw new RangeError(`embedded nats-server port must be an integer 0..65535, got ${opts.port}`);
    }
  }

  /** Client URL of the running server ("" before start()). */
  get url(): string {
    return this.actualPort ? formatUrl(this.host, this.actualPort) : "";
  }
  /** The port actually in use (0 before start()). */
  get port(): number {
    return this.actualPort;
  }
  /** Pid of the current nats-server process, if one is running. */
  get pid(): number | undefined {
    return this.current?.pid;
  }
  get restarts(): number {
    return this.restartCount;
  }
  get running(): boolean {
    return this.current !== undefined;
  }

  /**
   * Starts the server and resolves once it accepts clients. Calling it again returns the same
   * promise (unless the previous attempt failed, in which case it tries again).
   */
  start(): Promise<EmbeddedRuntimeInfo> {
    if (this.stopping) return Promise.reject(new Error("embedded nats-server was stopped; create a new instance"));
    if (!this.startPromise) {
      this.startPromise = this.doStart();
      this.startPromise.catch(() => {
        this.startPromise = undefined;
      });
    }
    return this.startPromise;
  }

  /** SIGTERM, then SIGKILL after stopTimeoutMs; removes the runtime file. Idempotent. */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStart(): Promise<EmbeddedRuntimeInfo> {
    if (!isLoopback(this.host)) {
      throw new Error(`embedded nats-server must bind a loopback address (127.0.0.1, ::1, localhost), got "${this.host}"`);
    }
    await mkdir(this.storeDir, { recursive: true });
    await mkdir(dirname(this.runtimeFile), { recursive: true });
    await mkdir(dirname(this.pidFile), { recursive: true });
    await this.reapOrphan();

    process.on("exit", this.exitHook);
    this.launchedOnce = true;
    try {
      const launched = await this.launchWithPortFallback(this.requestedPort);
      if (this.stopping) throw new Error("embedded nats-server was stopped while starting");
      return await this.adopt(launched);
    } catch (err) {
      if (this.children.size === 0) process.removeListener("exit", this.exitHook);
      throw err;
    }
  }

  private async doStop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const pid = this.current?.pid;
    await Promise.all([...this.children.keys()].map((c) => this.terminate(c)));
    this.current = undefined;
    process.removeListener("exit", this.exitHook);
    await this.pendingWrite.catch(() => {});
    if (this.launchedOnce) {
      // Only files this instance wrote; a stop() without start() must not touch another's.
      await removeFile(this.runtimeFile);
      await removeFile(this.pidFile);
    }
    if (pid !== undefined) this.logger.info({ pid }, "embedded nats-server stopped");
  }

  /** Makes a freshly launched child the current server and publishes the runtime file. */
  private async adopt(launched: Launched): Promise<EmbeddedRuntimeInfo> {
    const { child } = launched;
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new NatsServerStartError(
        `nats-server exited right after becoming ready (${describeExit(child.exitCode, child.signalCode)})`,
        launched.tail.join("\n"),
      );
    }
    this.current = launched;
    this.actualPort = launched.port;
    const info: EmbeddedRuntimeInfo = {
      url: formatUrl(this.host, launched.port),
      pid: launched.pid,
      port: launched.port,
      startedAt: launched.startedAt.toISOString(),
    };
    this.pendingWrite = writeJsonAtomic(this.runtimeFile, info);
    await this.pendingWrite;
    this.logger.info({ ...info, storeDir: this.storeDir }, `embedded nats-server ready at ${info.url}`);
    return info;
  }

  private async choosePort(preferred: number): Promise<number> {
    if (preferred === 0) return findFreePort(this.host);
    if (await isPortFree(this.host, preferred)) return preferred;
    const port = await findFreePort(this.host);
    this.logger.warn(
      { requestedPort: preferred, port },
      `port ${preferred} on ${this.host} is in use; embedded nats-server will use port ${port} instead`,
    );
    return port;
  }

  /** Launch, and if someone grabbed the port between our check and the bind, try another. */
  private async launchWithPortFallback(preferred: number): Promise<Launched> {
    let wanted = preferred;
    for (let attempt = 1; ; attempt++) {
      const port = await this.choosePort(wanted);
      try {
        return await this.launch(port);
      } catch (err) {
        const inUse = err instanceof NatsServerStartError && /address already in use/i.test(err.stderrTail);
        if (!inUse || attempt >= LAUNCH_ATTEMPTS || this.stopping) throw err;
        this.logger.warn({ port }, `port ${port} was taken while nats-server started; trying another`);
        wanted = 0;
      }
    }
  }

  private launch(port: number): Promise<Launched> {
    if (this.stopping) return Promise.reject(new Error("embedded nats-server is stopping"));
    const args = ["-js", "-a", this.host, "-p", String(port), "-sd", this.storeDir, "--pid", this.pidFile, ...this.extraArgs];
    const tail: string[] = [];
    const child = spawn(this.binary, args, {
      stdio: ["ignore", "ignore", "pipe"],
      // Own process group: a Ctrl-C aimed at the daemon must not kill the server behind its back;
      // the daemon stops it in order during shutdown.
      detached: true,
    });
    let closed!: () => void;
    this.children.set(child, new Promise<void>((r) => (closed = r)));

    return new Promise<Launched>((resolve, reject) => {
      let settled = false;
      let launched: Launched | undefined;
      const timer = setTimeout(() => {
        fail(new NatsServerStartError(`nats-server did not become ready within ${this.readyTimeoutMs}ms`, tail.join("\n")));
        child.kill("SIGKILL");
      }, this.readyTimeoutMs);

      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      };

      if (child.stderr) {
        const rl = createInterface({ input: child.stderr, crlfDelay: Infinity });
        rl.on("line", (line) => {
          tail.push(line);
          if (tail.length > STDERR_TAIL_LINES) tail.shift();
          this.forwardLogLine(line, child.pid);
          if (!settled && /Server is ready/.test(line) && child.pid !== undefined) {
            settled = true;
            clearTimeout(timer);
            launched = { child, pid: child.pid, port, startedAt: new Date(), tail };
            resolve(launched);
          }
        });
      }

      child.once("error", (err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") fail(new NatsServerNotFoundError(this.binary, { cause: err }));
        else fail(new NatsServerStartError(`cannot run nats-server "${this.binary}": ${err.message}`, tail.join("\n"), { cause: err }));
        // A failed spawn may never emit "close".
        if (child.pid === undefined) {
          this.children.delete(child);
          closed();
        }
      });

      child.once("close", (code: number | null, signal: NodeJS.Signals | null) => {
        this.children.delete(child);
        closed();
        fail(
          new NatsServerStartError(
            `nats-server exited before it was ready (${describeExit(code, signal)}; args: ${args.join(" ")})`,
            tail.join("\n"),
          ),
        );
        if (launched) this.handleExit(launched, code, signal);
      });
    });
  }

  private handleExit(launched: Launched, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.current !== launched) return; // an old or abandoned child
    this.current = undefined;
    if (this.stopping) return;
    const info: EmbeddedExitInfo = { pid: launched.pid, code, signal, stderrTail: launched.tail.join("\n") };
    if (Date.now() - launched.startedAt.getTime() >= STABLE_AFTER_MS) this.backoffMs = INITIAL_BACKOFF_MS;
    this.logger.error(
      { pid: launched.pid, code, signal, restartInMs: this.backoffMs, stderrTail: info.stderrTail.split("\n").slice(-5) },
      `embedded nats-server exited unexpectedly (${describeExit(code, signal)}); restarting in ${this.backoffMs}ms`,
    );
    safeCall(() => this.onExit?.(info), this.logger, "onExit");
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.stopping) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.restart(delay);
    }, delay);
  }

  private async restart(delayMs: number): Promise<void> {
    if (this.stopping) return;
    try {
      // Same port as before so clients reconnect to the URL they know.
      const launched = await this.launchWithPortFallback(this.actualPort || this.requestedPort);
      if (this.stopping) return; // stop() already terminated the child
      this.restartCount++;
      const info = await this.adopt(launched);
      if (this.stopping) return;
      this.logger.warn({ ...info, restarts: this.restartCount }, `embedded nats-server restarted (restart #${this.restartCount})`);
      const restartInfo: EmbeddedRestartInfo = { ...info, restarts: this.restartCount, delayMs };
      safeCall(() => this.onRestart?.(restartInfo), this.logger, "onRestart");
    } catch (err) {
      if (this.stopping) return;
      this.logger.error({ err, retryInMs: this.backoffMs }, `embedded nats-server restart failed; retrying in ${this.backoffMs}ms`);
      this.scheduleRestart();
    }
  }

  private async terminate(child: ChildProcess): Promise<void> {
    const closed = this.children.get(child);
    if (!closed) return;
    child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      closed.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), this.stopTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.logger.warn({ pid: child.pid }, `embedded nats-server did not exit within ${this.stopTimeoutMs}ms of SIGTERM; sending SIGKILL`);
      child.kill("SIGKILL");
      await closed;
    }
  }

  /** Last resort when the daemon exits without stop(): do not leave an orphan behind. */
  private killAllSync(): void {
    for (const child of this.children.keys()) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    try {
      const raw = JSON.parse(readFileSync(this.runtimeFile, "utf8")) as { pid?: unknown };
      if (raw.pid === this.current?.pid) unlinkSync(this.runtimeFile);
    } catch {
      // nothing to clean
    }
  }

  /**
   * A previous daemon that died hard can leave its nats-server running on our store dir.
   * Two servers on one JetStream store would corrupt it, so stop that one first. Only a
   * process whose command line names our store dir is touched (Linux /proc; skipped elsewhere).
   */
  private async reapOrphan(): Promise<void> {
    const info = await readRuntimeFile(this.runtimeFile);
    if (!info || !isAlive(info.pid)) return;
    let cmdline: string[];
    try {
      cmdline = (await readFile(`/proc/${info.pid}/cmdline`, "utf8")).split("\0");
    } catch {
      return;
    }
    const sd = cmdline.indexOf("-sd");
    if (sd < 0 || cmdline[sd + 1] !== this.storeDir) return;
    this.logger.warn({ pid: info.pid, url: info.url }, "stopping a leftover embedded nats-server from a previous run");
    await killPid(info.pid, this.stopTimeoutMs);
  }

  private forwardLogLine(line: string, pid: number | undefined): void {
    const m = /\[(ERR|FTL|WRN)\]\s?(.*)$/.exec(line);
    if (!m) return;
    const msg = `nats-server: ${m[2] ?? ""}`;
    if (m[1] === "WRN") this.logger.warn({ pid }, msg);
    else this.logger.error({ pid }, msg);
  }
}

/**
 * Reads the runtime file written by a running EmbeddedNatsServer. Returns null when the file
 * is missing or unreadable, or when the process it names is no longer alive.
 */
export async function readEmbeddedRuntime(file: string): Promise<EmbeddedRuntimeInfo | null> {
  const info = await readRuntimeFile(file);
  return info && isAlive(info.pid) ? info : null;
}

async function readRuntimeFile(file: string): Promise<EmbeddedRuntimeInfo | null> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, "utf8"));
  } catch {
    return null;
  }
  if (typeof raw !== "object" || raw === null) return null;
  const r = raw as Record<string, unknown>;
  if (
    typeof r.url !== "string" ||
    typeof r.pid !== "number" ||
    !Number.isInteger(r.pid) ||
    r.pid <= 0 ||
    typeof r.port !== "number" ||
    typeof r.startedAt !== "string"
  ) {
    return null;
  }
  return { url: r.url, pid: r.pid, port: r.port, startedAt: r.startedAt };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function killPid(pid: number, timeoutMs: number): Promise<void> {
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      // gone
    }
  };
  signal("SIGTERM");
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid)) {
    signal("SIGKILL");
    const hard = Date.now() + 2_000;
    while (isAlive(pid) && Date.now() < hard) await sleep(50);
  }
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + "\n", { mode: 0o644 });
  await rename(tmp, file);
}

async function removeFile(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function formatUrl(host: string, port: number): string {
  return `nats://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code ?? "unknown"}`;
}

function safeCall(fn: () => void, logger: BusLogger, name: string): void {
  try {
    fn();
  } catch (err) {
    logger.error({ err }, `embedded nats-server ${name} hook threw`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
