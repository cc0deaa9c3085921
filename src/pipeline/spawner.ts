/**
 * How step programs are started. Two ways, one interface (`launch`):
 *
 * - **The spawn helper** (default): `spawn-helper.py`, a small python3 process started once per
 *   daemon, starts each program with posix_spawn() and relays its output as JSON lines. Node's own
 *   spawn is fork() + exec(): fork copies the page tables of the whole daemon (tens of MB) and
 *   makes its memory copy-on-write until the child has exec'd, ~1.5-2 ms of the daemon's CPU per
 *   program plus as much again in the child; posix_spawn from a 10 MB process costs ~0.1 ms. With
 *   three programs per video on a machine whose cores ffmpeg keeps busy, that CPU is wall time.
 *   When the daemon dies, the helper reads end-of-file and SIGKILLs every program's process group.
 * - **Node's spawn** through `setpriv --pdeathsig KILL` (the kernel kills the program if the
 *   daemon dies): when python3 or the helper script is missing, the helper is turned off in
 *   config (`workers.spawnHelper: false`), or it keeps failing.
 *
 * Either way the program runs in a session of its own (Node's `detached`; so also a process group
 * whose id is its pid, and under Linux's autogroup scheduling a CPU share of its own: one share
 * for all programs made a pipeline bench run ~40% slower; docs/decisions.md), with stdin on
 * /dev/null; the caller signals the group itself (`process.kill(-pid, sig)`).
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs";
import type { Socket } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Logger } from "../shared/logger.js";
import { resolveCommand } from "./command.js";

/** What a launched program reports, in this order: spawn (or error), output, exit, close. */
export interface ChildEvents {
  spawn(pid: number): void;
  /** It could not be started (`code`: ENOENT, EACCES, ...). Nothing else follows. */
  error(err: NodeJS.ErrnoException): void;
  stdout(text: string): void;
  stderr(text: string): void;
  exit(code: number | null, signal: NodeJS.Signals | null): void;
  /** The last event: all output has been delivered. */
  close(): void;
}

export interface LaunchRequest {
  /** An absolute path (see resolveCommand). */
  readonly file: string;
  /** Arguments after the program name. */
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Kill the program if the daemon dies (default true). */
  readonly dieWithParent?: boolean;
}

export interface LaunchedChild {
  /** Stop delivering events (the caller has given up waiting for output after exit). */
  release(): void;
}

export interface SpawnerOptions {
  /** Start programs through the spawn helper when it can run (default true). */
  readonly helper?: boolean;
  readonly log?: Logger;
}

const HELPER_SCRIPT = fileURLToPath(new URL("./spawn-helper.py", import.meta.url));
/** Unexpected exits of the helper in a row (none started a program) after which it is given up on. */
const MAX_HELPER_FAILURES = 3;

let options: SpawnerOptions = {};
let helper: SpawnHelper | null | undefined;
let helperFailures = 0;

/** Sets how programs are started from now on (the daemon calls this with its config and logger). */
export function configureSpawner(next: SpawnerOptions): void {
  options = next;
  if (next.helper === false) {
    helper?.stop();
    helper = null;
  } else if (helper === null) {
    // Decide again on the next program (currentHelper still honours the failure count).
    helper = undefined;
  }
}

/** Which way programs are started now: "helper" or "node" (starting the helper if it is due). */
export function spawnerMode(): "helper" | "node" {
  return currentHelper() ? "helper" : "node";
}

/** Starts `file args...`; its events arrive through `events`. */
export function launch(request: LaunchRequest, events: ChildEvents): LaunchedChild {
  const viaHelper = request.dieWithParent === false ? null : currentHelper();
  return viaHelper ? viaHelper.launch(request, events) : nodeLaunch(request, events);
}

function currentHelper(): SpawnHelper | null {
  if (helper !== undefined) return helper;
  helper = null;
  if (options.helper === false || helperFailures >= MAX_HELPER_FAILURES) return null;
  let python: string;
  try {
    python = resolveCommand("python3");
  } catch {
    options.log?.info({ fallback: "node" }, "spawn helper: python3 not found; step programs are started by forking the daemon");
    return null;
  }
  if (!fs.existsSync(HELPER_SCRIPT)) {
    options.log?.warn({ script: HELPER_SCRIPT }, "spawn helper: script missing (is the build complete?); step programs are started by forking the daemon");
    return null;
  }
  helper = new SpawnHelper(python, HELPER_SCRIPT, (reason) => {
    helperFailures++;
    helper = undefined;
    const givingUp = helperFailures >= MAX_HELPER_FAILURES;
    options.log?.warn({ reason, failures: helperFailures, givingUp }, givingUp ? "spawn helper failed again; step programs are started by forking the daemon from now on" : "spawn helper exited; it is restarted on the next program");
  });
  options.log?.info({ python, helperPid: helper.pid }, "spawn helper started: step programs are started with posix_spawn");
  return helper;
}

// ---------------------------------------------------------------- the helper

interface HelperEvent {
  readonly id: number;
  readonly t: "spawn" | "error" | "out" | "err" | "exit" | "close";
  readonly pid?: number;
  readonly code?: string | number | null;
  readonly syscall?: string;
  readonly message?: string;
  readonly d?: string;
  readonly signal?: NodeJS.Signals | null;
}

interface Pending {
  readonly request: LaunchRequest;
  readonly events: ChildEvents;
  pid?: number;
  /** Its exit has been reported (only "close" is still to come). */
  exited?: boolean;
  /** Started by Node's spawn instead, because the helper died before starting it. */
  fallback?: LaunchedChild;
}

class SpawnHelper {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #stderrTail = "";
  #stopped = false;
  #gone = false;
  readonly #onFailure: (reason: string) => void;

  constructor(python: string, script: string, onFailure: (reason: string) => void) {
    this.#onFailure = onFailure;
    // -I: no PYTHON* variables, no user site; -S: no site module (only the standard library is used).
    // detached: a terminal's Ctrl-C goes to the daemon, which decides what happens to running steps.
    this.#child = spawn(python, ["-I", "-S", script], { stdio: ["pipe", "pipe", "pipe"], detached: true });
    this.#idle();
    createInterface({ input: this.#child.stdout, crlfDelay: Infinity }).on("line", (line) => this.#onLine(line));
    this.#child.stderr.setEncoding("utf8");
    this.#child.stderr.on("data", (chunk: string) => {
      this.#stderrTail = (this.#stderrTail + chunk).slice(-2000);
    });
    // EPIPE on a write after the helper died: its exit is handled below.
    this.#child.stdin.on("error", () => {});
    this.#child.once("error", (err) => this.#onGone(`could not start ${python}: ${err.message}`));
    // "close", not "exit": the events still in the pipe are delivered first.
    this.#child.once("close", (code, signal) => {
      const how = code === null ? `killed by ${signal ?? "a signal"}` : `exited with code ${code}`;
      this.#onGone(`${how}${this.#stderrTail ? `: ${this.#stderrTail.trim()}` : ""}`);
    });
  }

  launch(request: LaunchRequest, events: ChildEvents): LaunchedChild {
    const id = this.#nextId++;
    const pending: Pending = { request, events };
    this.#pending.set(id, pending);
    if (this.#pending.size === 1) this.#busy();
    const env = request.env === undefined ? null : Object.fromEntries(Object.entries(request.env).filter(([, v]) => v !== undefined));
    const file = request.file;
    this.#child.stdin.write(`${JSON.stringify({ op: "spawn", id, file, argv: [file, ...request.args], cwd: request.cwd ?? null, env })}\n`);
    return {
      release: () => {
        this.#forget(id);
        pending.fallback?.release();
      },
    };
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Ends the helper (programs still running are killed by it). */
  stop(): void {
    this.#stopped = true;
    this.#child.stdin.end();
  }

  #onLine(line: string): void {
    if (line === "") return;
    let event: HelperEvent;
    try {
      event = JSON.parse(line) as HelperEvent;
    } catch {
      options.log?.warn({ line: line.slice(0, 200) }, "spawn helper: ignoring a line that is not JSON");
      return;
    }
    this.#dispatch(event);
  }

  #dispatch(event: HelperEvent): void {
    const pending = this.#pending.get(event.id);
    if (!pending) return;
    const { events } = pending;
    switch (event.t) {
      case "spawn":
        helperFailures = 0;
        pending.pid = event.pid;
        events.spawn(event.pid ?? -1);
        break;
      case "out":
        events.stdout(event.d ?? "");
        break;
      case "err":
        events.stderr(event.d ?? "");
        break;
      case "exit":
        pending.exited = true;
        events.exit(typeof event.code === "number" ? event.code : null, event.signal ?? null);
        break;
      case "error": {
        this.#forget(event.id);
        const where = event.syscall === "chdir" ? ` (working directory ${pending.request.cwd ?? ""})` : "";
        const err: NodeJS.ErrnoException = new Error(`${event.message ?? "spawn failed"}${where}`);
        err.code = typeof event.code === "string" ? event.code : "EIO";
        err.syscall = event.syscall ?? "spawn";
        events.error(err);
        break;
      }
      case "close":
        this.#forget(event.id);
        events.close();
        break;
    }
  }

  #forget(id: number): void {
    if (this.#pending.delete(id) && this.#pending.size === 0) this.#idle();
  }

  /** While programs run, the helper's pipe keeps the event loop alive, as a ChildProcess would. */
  #busy(): void {
    this.#child.ref();
    asSocket(this.#child.stdout).ref();
  }

  #idle(): void {
    this.#child.unref();
    for (const stream of [this.#child.stdout, this.#child.stderr, this.#child.stdin]) asSocket(stream).unref();
  }

  /**
   * The helper is gone. Programs not started yet are started by Node instead; programs running
   * lost their pipes and their reaper, so their groups are killed and they end as killed.
   */
  #onGone(reason: string): void {
    if (this.#gone) return;
    this.#gone = true;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    if (!this.#stopped) this.#onFailure(reason);
    for (const p of pending) {
      if (p.pid === undefined) {
        p.fallback = nodeLaunch(p.request, p.events);
        continue;
      }
      if (p.exited) {
        // It had ended; only the end of its output was still to come.
        p.events.close();
        continue;
      }
      try {
        process.kill(-p.pid, "SIGKILL");
      } catch {
        // ESRCH: it had ended.
      }
      p.events.stderr(`\nvqd: the spawn helper ended (${reason.split("\n")[0]}) while this program ran; it was killed\n`);
      p.events.exit(null, "SIGKILL");
      p.events.close();
    }
  }
}

/** A child's stdio pipes are sockets (typed as plain streams by child_process). */
const asSocket = (stream: NodeJS.ReadableStream | NodeJS.WritableStream): Socket => stream as unknown as Socket;

// ---------------------------------------------------------------- Node's spawn

let setpriv: string | null | undefined;

/** The path of a working `setpriv --pdeathsig`, checked once; null when there is none. */
function pdeathsigLauncher(): string | null {
  if (setpriv !== undefined) return setpriv;
  try {
    const found = resolveCommand("setpriv");
    execFileSync(found, ["--pdeathsig", "KILL", "--", "true"], { stdio: "ignore", timeout: 5000 });
    setpriv = found;
  } catch {
    setpriv = null;
  }
  return setpriv;
}

/**
 * fork + exec by Node. If the daemon itself dies (kill -9, OOM), nothing of ours runs to stop the
 * program, and ffmpeg ignores SIGPIPE, so it would carry on as an orphan: where util-linux's
 * `setpriv` is available (Debian/Ubuntu: always), the program is started through
 * `setpriv --pdeathsig KILL`, which makes the kernel kill it when the daemon dies.
 */
function nodeLaunch(request: LaunchRequest, events: ChildEvents): LaunchedChild {
  const launcher = request.dieWithParent === false ? null : pdeathsigLauncher();
  const [file, argv] = launcher ? [launcher, ["--pdeathsig", "KILL", "--", request.file, ...request.args]] : [request.file, [...request.args]];
  const child = spawn(file, argv, { detached: true, stdio: ["ignore", "pipe", "pipe"], cwd: request.cwd, env: request.env, windowsHide: true });
  let released = false;
  child.once("error", (err: NodeJS.ErrnoException) => {
    // After a successful spawn the only errors are failed kills, which we do not make.
    if (!released && child.pid === undefined) events.error(err);
  });
  child.once("spawn", () => {
    if (!released && child.pid !== undefined) events.spawn(child.pid);
  });
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (text: string) => released || events.stdout(text));
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text: string) => released || events.stderr(text));
  child.once("exit", (code, signal) => released || events.exit(code, signal));
  child.once("close", () => released || events.close());
  return {
    release: () => {
      released = true;
      child.stdout.destroy();
      child.stderr.destroy();
    },
  };
}
