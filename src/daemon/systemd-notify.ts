/**
 * sd_notify(3) for a Type=notify systemd service: READY=1, STATUS=..., WATCHDOG=1, STOPPING=1.
 *
 * How the datagrams are sent, and why: the protocol is one AF_UNIX/SOCK_DGRAM datagram to
 * $NOTIFY_SOCKET, and Node has no unix datagram sockets (node:dgram is UDP only, node:net is
 * stream only). The choices were a native addon (unix-dgram, sd-notify, ...) or the
 * `systemd-notify` binary. We spawn `systemd-notify`:
 *   - it ships in the `systemd` package, so it is present wherever a systemd unit can run us and is
 *     maintained with the protocol itself (abstract sockets, barriers, future changes);
 *   - no compiler, no node-gyp, no headers download, no ABI to rebuild on a Node upgrade: a native
 *     addon would need a toolchain on every production machine;
 *   - it waits (sd_notify_barrier) until systemd has processed the message, so the message is
 *     attributed to our unit even though the sender is a short-lived child. That is also why the
 *     units set NotifyAccess=all: the datagram comes from the child's pid, not the main pid (a
 *     process without CAP_SYS_ADMIN cannot claim another pid in SCM_CREDENTIALS).
 * The cost is a fork+exec per message (a few ms): READY and STOPPING once, WATCHDOG every
 * WatchdogSec/2, STATUS only when its text changes. Messages are sent one at a time, in order.
 *
 * Without NOTIFY_SOCKET (not started by systemd, or Type= is not notify) createNotifier() returns
 * null and callers do nothing: `notifier?.ready(...)`.
 */
import { spawn } from "node:child_process";

export interface NotifierLogger {
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface Notifier {
  /** The socket systemd gave us ($NOTIFY_SOCKET). */
  readonly socket: string;
  /**
   * How often to send WATCHDOG=1: half of $WATCHDOG_USEC (as sd_watchdog_enabled(3) advises), or
   * null when systemd asked for no watchdog (or asked it of another pid through $WATCHDOG_PID).
   */
  readonly watchdogIntervalMs: number | null;
  /** READY=1 (with MAINPID=<our pid> and an optional STATUS=): start-up is complete. */
  ready(status?: string): Promise<void>;
  /** STATUS=<text> (one line; shown by `systemctl status`). Unchanged text is not re-sent. */
  status(text: string): Promise<void>;
  /** WATCHDOG=1: "still alive". */
  watchdog(): Promise<void>;
  /** STOPPING=1 (and an optional STATUS=): shutdown has begun. */
  stopping(status?: string): Promise<void>;
  /**
   * Sends WATCHDOG=1 every watchdogIntervalMs from an unref'd timer, which fires only while the
   * event loop is alive, which is the point. No-op without a watchdog. Safe to call before ready().
   */
  startWatchdog(): void;
  /**
   * Sends STATUS=<produce()> every intervalMs (default 10 s; unchanged text is skipped), e.g. the
   * queue depth: `notifier.startStatus(async () => queueStatusText(await daemon.status()))`.
   */
  startStatus(produce: () => string | Promise<string>, intervalMs?: number): void;
  /** Stops the timers and waits for messages still being sent. */
  close(): Promise<void>;
}

export interface NotifierOptions {
  /** The systemd-notify executable (a name looked up in PATH, or a path). Default "systemd-notify". */
  readonly binary?: string;
  /** Our pid, announced as MAINPID with READY=1 and compared with $WATCHDOG_PID. Default process.pid. */
  readonly pid?: number;
  readonly logger?: NotifierLogger;
  /** A systemd-notify that has not exited after this long is killed. Default 10000. */
  readonly timeoutMs?: number;
}

/** A notifier when $NOTIFY_SOCKET is set, else null. */
export function createNotifier(env: NodeJS.ProcessEnv = process.env, options: NotifierOptions = {}): Notifier | null {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return null;
  return new SystemdNotifier(socket, watchdogIntervalMs(env, options.pid ?? process.pid), env.PATH, options);
}

/**
 * Half of $WATCHDOG_USEC in milliseconds (at least 1), or null when it is unset, not a positive
 * integer, or $WATCHDOG_PID names another process.
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number = process.pid): number | null {
  const usec = env.WATCHDOG_USEC;
  if (!usec || !/^\d+$/.test(usec)) return null;
  const value = Number(usec);
  if (!Number.isSafeInteger(value) || value <= 0) return null;
  const forPid = env.WATCHDOG_PID;
  if (forPid && /^\d+$/.test(forPid) && Number(forPid) !== pid) return null;
  return Math.max(1, Math.floor(value / 2000));
}

/** A one-line STATUS= text from the daemon's status: `queued 3 (high 0, normal 3, low 0), running 1, workers 1/3 busy`. */
export function queueStatusText(s: {
  readonly depth: Readonly<Record<string, number>>;
  readonly inFlight: number;
  readonly workers?: { readonly size: number; readonly busy: number };
}): string {
  const lanes = Object.entries(s.depth);
  const queued = lanes.reduce((sum, [, n]) => sum + n, 0);
  const parts = [`queued ${queued} (${lanes.map(([lane, n]) => `${lane} ${n}`).join(", ")})`, `running ${s.inFlight}`];
  if (s.workers) parts.push(`workers ${s.workers.busy}/${s.workers.size} busy`);
  return parts.join(", ");
}

/** One line of printable text: a newline would start a new field of the message. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, " ").trim().slice(0, 1000);
}

class SystemdNotifier implements Notifier {
  readonly socket: string;
  readonly watchdogIntervalMs: number | null;
  readonly #binary: string;
  readonly #pid: number;
  readonly #path: string | undefined;
  readonly #log: NotifierLogger | undefined;
  readonly #timeoutMs: number;
  /** Messages go out one after another, in call order. */
  #tail: Promise<void> = Promise.resolve();
  #watchdogQueued = false;
  #lastStatus: string | undefined;
  #watchdogTimer: NodeJS.Timeout | undefined;
  #statusTimer: NodeJS.Timeout | undefined;
  #disabled = false;
  #lastError: string | undefined;

  constructor(socket: string, interval: number | null, path: string | undefined, options: NotifierOptions) {
    this.socket = socket;
    this.watchdogIntervalMs = interval;
    this.#binary = options.binary ?? "systemd-notify";
    this.#pid = options.pid ?? process.pid;
    this.#path = path;
    this.#log = options.logger;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  ready(status?: string): Promise<void> {
    const fields = ["READY=1"];
    if (status !== undefined) fields.push(this.#statusField(status));
    return this.#enqueue([`--pid=${this.#pid}`], fields);
  }

  status(text: string): Promise<void> {
    const line = oneLine(text);
    if (line === this.#lastStatus) return this.#tail;
    return this.#enqueue([], [this.#statusField(line)]);
  }

  watchdog(): Promise<void> {
    // A ping already waiting to go out says the same thing; do not pile them up behind a slow send.
    if (this.#watchdogQueued) return this.#tail;
    this.#watchdogQueued = true;
    return this.#enqueue([], ["WATCHDOG=1"], () => (this.#watchdogQueued = false));
  }

  stopping(status?: string): Promise<void> {
    const fields = ["STOPPING=1"];
    if (status !== undefined) fields.push(this.#statusField(status));
    return this.#enqueue([], fields);
  }

  startWatchdog(): void {
    if (this.watchdogIntervalMs === null || this.#watchdogTimer) return;
    this.#watchdogTimer = setInterval(() => void this.watchdog(), this.watchdogIntervalMs);
    this.#watchdogTimer.unref();
    void this.watchdog();
  }

  startStatus(produce: () => string | Promise<string>, intervalMs = 10_000): void {
    if (this.#statusTimer) return;
    const tick = async (): Promise<void> => {
      try {
        await this.status(await produce());
      } catch (err) {
        this.#log?.debug({ err: (err as Error).message }, "systemd status text could not be produced");
      }
    };
    this.#statusTimer = setInterval(() => void tick(), Math.max(1000, intervalMs));
    this.#statusTimer.unref();
    void tick();
  }

  async close(): Promise<void> {
    clearInterval(this.#watchdogTimer);
    clearInterval(this.#statusTimer);
    this.#watchdogTimer = undefined;
    this.#statusTimer = undefined;
    await this.#tail;
  }

  #statusField(text: string): string {
    const line = oneLine(text);
    this.#lastStatus = line;
    return `STATUS=${line}`;
  }

  #enqueue(options: readonly string[], fields: readonly string[], onStart?: () => void): Promise<void> {
    const next = this.#tail.then(() => {
      onStart?.();
      return this.#send(options, fields);
    });
    this.#tail = next;
    return next;
  }

  /** Runs systemd-notify once; never rejects (a failed notification is logged, not thrown). */
  #send(options: readonly string[], fields: readonly string[]): Promise<void> {
    if (this.#disabled) return Promise.resolve();
    return new Promise<void>((resolve) => {
      // No shell: the arguments go to execve() as they are. "--" ends the options, so a field can
      // never be read as one. Only what systemd-notify needs is passed in its environment.
      const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: this.socket };
      if (this.#path !== undefined) env.PATH = this.#path;
      const child = spawn(this.#binary, [...options, "--", ...fields], { env, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr?.on("data", (d: Buffer) => {
        if (stderr.length < 2000) stderr += d.toString();
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), this.#timeoutMs);
      timer.unref();
      let done = false;
      const finish = (problem: string | null, fatal = false): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (problem !== null) this.#report(problem, fields, fatal);
        resolve();
      };
      child.once("error", (err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") {
          finish(`${this.#binary} not found: systemd will not receive READY=1/WATCHDOG=1 (install systemd, or run vqd without Type=notify)`, true);
        } else {
          finish(`cannot run ${this.#binary}: ${err.message}`);
        }
      });
      child.once("close", (code, signal) => {
        if (code === 0) finish(null);
        else finish(`${this.#binary} failed (${signal ?? `exit ${code}`}): ${stderr.trim() || "no message"}`);
      });
    });
  }

  #report(problem: string, fields: readonly string[], fatal: boolean): void {
    if (fatal) this.#disabled = true;
    // Log a new problem once; the same problem again (every watchdog ping) only at debug level.
    if (problem === this.#lastError) {
      this.#log?.debug({ fields, socket: this.socket }, problem);
      return;
    }
    this.#lastError = problem;
    this.#log?.warn({ fields, socket: this.socket }, problem);
  }
}
