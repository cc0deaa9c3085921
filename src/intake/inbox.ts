/**
 * Watched inbox folders (`inboxes` in the config): a new file is enqueued once it has stopped
 * changing, exactly once per (path, size, mtime), also across restarts.
 *
 * How files are noticed: one `fs.watch` (inotify) per watched folder, plus a full rescan every
 * `rescanMs`. The rescan catches what inotify cannot see (files written by another machine on
 * NFS or SMB) and any events lost to a queue overflow. No watcher library: chokidar keeps one
 * fs.watch per *file* and re-reads the whole folder on every folder event, while the settle
 * check, the known-files table and the rescan that an inbox needs are ours either way.
 *
 * When a file counts as complete: it is stat'ed when first seen and again every `settleMs`;
 * once two checks in a row see the same size and mtime, with no file event in between, it is
 * enqueued. Copies written in chunks, renames and moves into the folder all end the same way.
 * Temporary names (dot-files, `*.part`, `*.tmp`, ...) are never considered; their final
 * rename is an event like any other. Empty files wait until they have content. Idle, the
 * watcher holds no timer but the rescan interval.
 */
import { constants, watch, type BigIntStats, type FSWatcher } from "node:fs";
import { copyFile, link, lstat, mkdir, readdir, realpath, stat, unlink } from "node:fs/promises";
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { ConfigError, type Config } from "../config/index.js";
import type { InboxConfig } from "../config/schema.js";
import type { Lane } from "../domain/index.js";
import type { Logger } from "../shared/logger.js";
import { isInputError } from "./errors.js";
import { isTemporaryName, nameMatcher } from "./inbox-names.js";
import type { KnownFiles, NewKnownFile } from "./known-files.js";
import { validateVideoPath } from "./path-checker.js";

/** What the watcher needs to know about an enqueue's result (EnqueueOutcome fits). */
export type InboxEnqueueOutcome = { readonly ok: true; readonly id: string } | { readonly ok: false; readonly error: string };

export interface InboxEnqueueOptions {
  /** undefined: the configured default lane. */
  readonly lane: Lane | undefined;
  readonly pipeline: string;
  /** `{ inbox: <folder> }`, recorded with each video. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** Enqueues absolute paths; returns one outcome per path, in order (as enqueueVideos does). */
export type InboxEnqueue = (paths: readonly string[], options: InboxEnqueueOptions) => Promise<readonly InboxEnqueueOutcome[]>;

export interface InboxWatcherOptions {
  readonly config: Pick<Config, "inboxes" | "allowedRoots" | "pipelines" | "defaultPipeline">;
  readonly enqueue: InboxEnqueue;
  readonly knownFiles: KnownFiles;
  readonly logger: Logger;
  /** Where relative inbox folders resolve from (default: the working directory). */
  readonly cwd?: string;
}

export interface InboxWatcherStats {
  readonly inboxes: number;
  /** Folders with an fs.watch open. */
  readonly watchedFolders: number;
  /** Files waiting to settle (each holds one timer). */
  readonly settling: number;
  /** Rescan intervals. */
  readonly intervals: number;
}

interface Inbox {
  /** `inboxes[0]` */
  readonly key: string;
  readonly cfg: InboxConfig;
  /** Real path. */
  readonly folder: string;
  readonly pipeline: string;
  readonly matches: (name: string) => boolean;
  readonly done: string | null;
  readonly failed: string | null;
  /** Folder -> its fs.watch. */
  readonly dirs: Map<string, FSWatcher>;
  /** Path -> `size:mtimeNs` last handled (enqueued, known or refused): not looked at again until it changes. */
  readonly seen: Map<string, string>;
  rescan: NodeJS.Timeout | null;
  scanning: Promise<void> | null;
  available: boolean;
}

interface Pending {
  readonly inbox: Inbox;
  size: number;
  mtimeNs: string;
  /** A file event arrived since the last check. */
  dirty: boolean;
  timer: NodeJS.Timeout | null;
}

interface Settled {
  readonly inbox: Inbox;
  readonly path: string;
  readonly size: number;
  readonly mtimeNs: string;
}

const signature = (size: number, mtimeNs: string) => `${size}:${mtimeNs}`;
const errno = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

function isInside(path: string, root: string): boolean {
  if (path === root) return true;
  const rel = relative(root, path);
  return rel.length > 0 && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

export class InboxWatcher {
  readonly #config: InboxWatcherOptions["config"];
  readonly #enqueue: InboxEnqueue;
  readonly #known: KnownFiles;
  readonly #log: Logger;
  readonly #cwd: string;
  #inboxes: Inbox[] = [];
  readonly #pending = new Map<string, Pending>();
  /** Paths being stat'ed by #look; the value says whether an event arrived meanwhile. */
  readonly #looking = new Map<string, boolean>();
  readonly #settled: Settled[] = [];
  #flushing: Promise<void> | null = null;
  #started = false;
  #stopped = false;
  #stopping: Promise<void> | undefined;

  constructor(options: InboxWatcherOptions) {
    this.#config = options.config;
    this.#enqueue = options.enqueue;
    this.#known = options.knownFiles;
    this.#log = options.logger;
    this.#cwd = options.cwd ?? process.cwd();
  }

  /**
   * Checks the config (a ConfigError names the bad key, e.g. `inboxes[0].folder`), resolves
   * enqueues a crash left unfinished, then watches and scans every inbox. With no inbox
   * configured it does nothing at all.
   */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    if (this.#config.inboxes.length === 0) return;
    this.#inboxes = await this.#resolveConfig();
    const recovered = this.#known.recoverPending();
    if (recovered.resolved + recovered.dropped > 0) this.#log.info(recovered, "inbox: resolved enqueues interrupted by a crash");
    for (const inbox of this.#inboxes) {
      if (this.#stopped) return;
      await this.#rescan(inbox);
      inbox.rescan = setInterval(() => void this.#rescan(inbox), inbox.cfg.rescanMs);
      inbox.rescan.unref();
    }
    this.#log.info({ inboxes: this.#inboxes.map((i) => i.folder) }, "watching inbox folders");
  }

  /** Closes the watchers and timers and waits for an enqueue in flight. Calling it again is a no-op. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#stopped = true;
    for (const inbox of this.#inboxes) {
      if (inbox.rescan) clearInterval(inbox.rescan);
      inbox.rescan = null;
      for (const w of inbox.dirs.values()) w.close();
      inbox.dirs.clear();
    }
    for (const p of this.#pending.values()) if (p.timer) clearTimeout(p.timer);
    this.#pending.clear();
    this.#settled.length = 0;
    await Promise.all([this.#flushing, ...this.#inboxes.map((i) => i.scanning)]);
  }

  stats(): InboxWatcherStats {
    return {
      inboxes: this.#inboxes.length,
      watchedFolders: this.#inboxes.reduce((n, i) => n + i.dirs.size, 0),
      settling: this.#pending.size,
      intervals: this.#inboxes.filter((i) => i.rescan !== null).length,
    };
  }

  /**
   * The daemon calls this after a video reaches a terminal state. When the video came from an
   * inbox with a doneFolder (completed) or failedFolder (dead), the original moves there; a
   * name already taken gets a suffix (`clip-1.mp4`). A cancelled video's original stays. Never
   * throws: problems are logged and the file is left where it is.
   */
  readonly onVideoFinished = async (videoId: string, state: string, path: string): Promise<void> => {
    if (this.#inboxes.length === 0 || (state !== "completed" && state !== "dead")) return;
    try {
      const row = this.#known.byVideo(videoId);
      if (!row) return;
      const inbox = this.#inboxes.find((i) => i.folder === row.inbox);
      const dest = state === "completed" ? inbox?.done : inbox?.failed;
      if (!inbox || !dest) return;
      let info: BigIntStats;
      try {
        info = await stat(row.path, { bigint: true });
      } catch (err) {
        if (errno(err) !== "ENOENT") throw err;
        this.#known.forget([row.path]);
        this.#log.info({ videoId, file: row.path }, "inbox: original already gone; nothing to move");
        return;
      }
      if (Number(info.size) !== row.size || info.mtimeNs.toString() !== row.mtimeNs) {
        this.#log.warn({ videoId, file: row.path }, "inbox: the file was replaced after it was enqueued; left in place");
        return;
      }
      const target = join(dest, relative(inbox.folder, row.path));
      await mkdir(dirname(target), { recursive: true });
      const moved = await moveWithoutClobbering(row.path, target);
      this.#known.forget([row.path]);
      inbox.seen.delete(row.path);
      this.#log.info({ videoId, state, from: row.path, to: moved }, "inbox: original moved");
    } catch (err) {
      this.#log.error({ videoId, state, file: path, err: message(err) }, "inbox: could not move the original; left in place");
    }
  };

  // --- config -------------------------------------------------------------------------------

  async #resolveConfig(): Promise<Inbox[]> {
    const config = this.#config;
    const roots: string[] = [];
    for (const r of config.allowedRoots) {
      try {
        roots.push(await realpath(resolve(this.#cwd, r)));
      } catch {
        // A missing root holds nothing; an inbox inside it fails below.
      }
    }
    const shownRoots = config.allowedRoots.map((r) => JSON.stringify(r)).join(", ");
    const inside = (p: string) => roots.some((root) => isInside(p, root));
    const out: Inbox[] = [];
    for (const [index, cfg] of config.inboxes.entries()) {
      const key = `inboxes[${index}]`;
      const fail = (field: string, reason: string): never => {
        throw new ConfigError({ keyPath: `${key}.${field}`, reason, source: "config" });
      };
      const got = `(got ${JSON.stringify(cfg.folder)})`;
      let folder = "";
      try {
        folder = await realpath(resolve(this.#cwd, cfg.folder));
      } catch (err) {
        fail("folder", `must be an existing folder: ${errno(err) === "ENOENT" ? "no such folder" : message(err)} ${got}`);
      }
      if (!(await stat(folder)).isDirectory()) fail("folder", `must be a folder, not a file ${got}`);
      if (roots.length === 0) fail("folder", `must be inside allowedRoots, and none are configured ${got}`);
      if (!inside(folder)) {
        const via = folder === resolve(this.#cwd, cfg.folder) ? "" : `, which resolves to ${JSON.stringify(folder)}`;
        fail("folder", `must be inside allowedRoots (${shownRoots}) ${got.slice(0, -1)}${via})`);
      }
      for (const other of out) {
        if (other.folder === folder) fail("folder", `is the same folder as ${other.key}.folder ${got}`);
        if (other.cfg.recursive && isInside(folder, other.folder)) fail("folder", `is inside ${other.key}.folder, which is recursive ${got}`);
        if (cfg.recursive && isInside(other.folder, folder)) fail("folder", `contains ${other.key}.folder and is recursive ${got}`);
      }
      const pipeline = cfg.pipeline ?? config.defaultPipeline;
      if (!Object.hasOwn(config.pipelines, pipeline)) {
        const names = Object.keys(config.pipelines).map((n) => JSON.stringify(n)).join(", ");
        fail("pipeline", `must name a pipeline (one of ${names}) (got ${JSON.stringify(pipeline)})`);
      }
      const destination = async (field: "doneFolder" | "failedFolder"): Promise<string | null> => {
        const value = cfg[field];
        if (value === "") return null;
        const target = await realTarget(resolve(this.#cwd, value));
        const shown = `(got ${JSON.stringify(value)})`;
        if (!inside(target)) fail(field, `must be inside allowedRoots (${shownRoots}) ${shown}`);
        if (target === folder) fail(field, `must not be the inbox folder itself ${shown}`);
        try {
          await mkdir(target, { recursive: true });
          if (!(await stat(target)).isDirectory()) throw new Error("not a folder");
        } catch (err) {
          fail(field, `must be a folder vqd can create or use: ${message(err)} ${shown}`);
        }
        return target;
      };
      out.push({
        key,
        cfg,
        folder,
        pipeline,
        matches: nameMatcher(cfg.patterns),
        done: await destination("doneFolder"),
        failed: await destination("failedFolder"),
        dirs: new Map(),
        seen: new Map(),
        rescan: null,
        scanning: null,
        available: true,
      });
    }
    return out;
  }

  // --- noticing files -----------------------------------------------------------------------

  /** A folder that is never descended into: hidden, or the done/failed folder. */
  #skipFolder(inbox: Inbox, dir: string): boolean {
    if (basename(dir).startsWith(".")) return true;
    return [inbox.done, inbox.failed].some((d) => d !== null && isInside(dir, d));
  }

  #watchFolder(inbox: Inbox, dir: string): void {
    if (this.#stopped || inbox.dirs.has(dir)) return;
    try {
      const w = watch(dir, (_event, name) => {
        if (name) this.#consider(inbox, join(dir, name));
        else void this.#scanFolder(inbox, dir);
      });
      w.on("error", (err) => {
        w.close();
        if (inbox.dirs.get(dir) === w) inbox.dirs.delete(dir);
        this.#log.debug({ folder: dir, err: err.message }, "inbox: folder watch ended; the rescan takes over");
      });
      inbox.dirs.set(dir, w);
    } catch (err) {
      this.#log.warn({ folder: dir, err: message(err) }, "inbox: cannot watch folder; relying on the rescan");
    }
  }

  /** Watches `dir`, then considers every file in it (and, if recursive, below it). */
  async #scanFolder(inbox: Inbox, dir: string, found?: { files: Set<string>; dirs: Set<string> }): Promise<boolean> {
    if (this.#stopped) return false;
    this.#watchFolder(inbox, dir);
    found?.dirs.add(dir);
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      this.#log.debug({ folder: dir, err: message(err) }, "inbox: cannot read folder");
      return false;
    }
    for (const e of entries) {
      if (this.#stopped) return false;
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        if (inbox.cfg.recursive && !this.#skipFolder(inbox, path)) await this.#scanFolder(inbox, path, found);
      } else {
        found?.files.add(path);
        this.#consider(inbox, path);
      }
    }
    return true;
  }

  /** A full pass over the inbox: new and changed files, folders to (re)watch, caches to trim. */
  #rescan(inbox: Inbox): Promise<void> {
    inbox.scanning ??= (async () => {
      const found = { files: new Set<string>(), dirs: new Set<string>() };
      const ok = await this.#scanFolder(inbox, inbox.folder, found);
      if (this.#stopped) return;
      if (!ok) {
        for (const w of inbox.dirs.values()) w.close();
        inbox.dirs.clear();
        if (inbox.available) this.#log.warn({ inbox: inbox.folder }, "inbox folder is unreadable or gone; will retry at each rescan");
        inbox.available = false;
        return;
      }
      if (!inbox.available) this.#log.info({ inbox: inbox.folder }, "inbox folder is back");
      inbox.available = true;
      for (const [dir, w] of inbox.dirs) {
        if (!found.dirs.has(dir)) {
          w.close();
          inbox.dirs.delete(dir);
        }
      }
      for (const path of inbox.seen.keys()) if (!found.files.has(path)) inbox.seen.delete(path);
    })()
      .catch((err: unknown) => this.#log.error({ inbox: inbox.folder, err: message(err) }, "inbox: rescan failed"))
      .finally(() => {
        inbox.scanning = null;
      });
    return inbox.scanning;
  }

  /** A file event or a scan saw `path`. Cheap for files already settling: no syscall. */
  #consider(inbox: Inbox, path: string): void {
    if (this.#stopped) return;
    const pending = this.#pending.get(path);
    if (pending) {
      pending.dirty = true;
      return;
    }
    if (this.#looking.has(path)) {
      this.#looking.set(path, true);
      return;
    }
    const name = basename(path);
    const wanted = !isTemporaryName(name) && inbox.matches(name);
    if (!wanted && !inbox.cfg.recursive) return;
    this.#looking.set(path, false);
    this.#look(inbox, path, wanted)
      .catch((err: unknown) => this.#log.warn({ file: path, err: message(err) }, "inbox: cannot look at file"))
      .finally(() => this.#looking.delete(path));
  }

  async #look(inbox: Inbox, path: string, wanted: boolean): Promise<void> {
    let info: BigIntStats;
    try {
      const l = await lstat(path, { bigint: true });
      if (l.isDirectory()) {
        if (inbox.cfg.recursive && !this.#skipFolder(inbox, path)) await this.#scanFolder(inbox, path);
        return;
      }
      if (!wanted) return;
      // A symlink is looked at through its target; the path validation decides whether it may be used.
      info = l.isSymbolicLink() ? await stat(path, { bigint: true }) : l;
    } catch (err) {
      const code = errno(err);
      if (code === "ENOENT" || code === "ENOTDIR") {
        inbox.seen.delete(path);
        return;
      }
      throw err;
    }
    if (!info.isFile() || this.#stopped || this.#pending.has(path)) return;
    const size = Number(info.size);
    const mtimeNs = info.mtimeNs.toString();
    const sig = signature(size, mtimeNs);
    if (inbox.seen.get(path) === sig) return;
    const known = this.#known.get(path);
    if (known && known.videoId !== null && known.size === size && known.mtimeNs === mtimeNs) {
      inbox.seen.set(path, sig);
      return;
    }
    this.#arm(path, { inbox, size, mtimeNs, dirty: this.#looking.get(path) ?? false, timer: null });
  }

  #arm(path: string, p: Pending): void {
    this.#pending.set(path, p);
    p.timer = setTimeout(() => void this.#check(path), p.inbox.cfg.settleMs);
    p.timer.unref();
  }

  /** settleMs after the last look: unchanged and no event since -> settled; else look again later. */
  async #check(path: string): Promise<void> {
    const p = this.#pending.get(path);
    if (!p || this.#stopped) return;
    p.timer = null;
    let info: BigIntStats | null = null;
    try {
      info = await stat(path, { bigint: true });
    } catch (err) {
      if (errno(err) !== "ENOENT" && errno(err) !== "ENOTDIR") this.#log.warn({ file: path, err: message(err) }, "inbox: cannot stat file; dropping it until it changes");
    }
    if (this.#stopped || this.#pending.get(path) !== p) return;
    if (info === null || !info.isFile()) {
      this.#pending.delete(path);
      p.inbox.seen.delete(path);
      return;
    }
    const size = Number(info.size);
    const mtimeNs = info.mtimeNs.toString();
    if (p.dirty || size !== p.size || mtimeNs !== p.mtimeNs) {
      p.size = size;
      p.mtimeNs = mtimeNs;
      p.dirty = false;
      this.#arm(path, p);
      return;
    }
    this.#pending.delete(path);
    if (size === 0) {
      // An empty file is a placeholder (some tools create the name first), never a video: it is
      // looked at again when it changes.
      p.inbox.seen.set(path, signature(size, mtimeNs));
      return;
    }
    this.#settled.push({ inbox: p.inbox, path, size, mtimeNs });
    this.#flushSoon();
  }

  // --- enqueueing ---------------------------------------------------------------------------

  /** Enqueues settled files in batches (one enqueue call per inbox), one batch at a time. */
  #flushSoon(): void {
    if (this.#flushing) return;
    this.#flushing = (async () => {
      await new Promise((r) => setImmediate(r)); // gather the files that settled in the same turn
      while (this.#settled.length > 0 && !this.#stopped) await this.#enqueueBatch(this.#settled.splice(0));
    })()
      .catch((err: unknown) => this.#log.error({ err: message(err) }, "inbox: enqueue failed; the files are tried again at the next rescan"))
      .finally(() => {
        this.#flushing = null;
        if (this.#settled.length > 0 && !this.#stopped) this.#flushSoon();
      });
  }

  async #enqueueBatch(batch: readonly Settled[]): Promise<void> {
    const byInbox = new Map<Inbox, Settled[]>();
    for (const s of batch) byInbox.set(s.inbox, [...(byInbox.get(s.inbox) ?? []), s]);
    for (const [inbox, files] of byInbox) {
      const accepted: NewKnownFile[] = [];
      for (const f of files) {
        const sig = signature(f.size, f.mtimeNs);
        const known = this.#known.get(f.path);
        if (known && known.videoId !== null && known.size === f.size && known.mtimeNs === f.mtimeNs) {
          inbox.seen.set(f.path, sig);
          continue;
        }
        try {
          const realPath = await validateVideoPath(f.path, this.#config.allowedRoots, this.#cwd);
          accepted.push({ path: f.path, inbox: inbox.folder, size: f.size, mtimeNs: f.mtimeNs, realPath });
        } catch (err) {
          if (!isInputError(err)) throw err;
          inbox.seen.set(f.path, sig); // logged once; looked at again when it changes or after a restart
          this.#log.warn({ inbox: inbox.folder, file: f.path, problem: err.problem, err: err.message }, "inbox: file refused; left in place");
        }
      }
      if (accepted.length === 0 || this.#stopped) continue;
      const paths = accepted.map((a) => a.path);
      this.#known.markPending(accepted);
      let outcomes: readonly InboxEnqueueOutcome[];
      try {
        outcomes = await this.#enqueue(paths, { lane: inbox.cfg.lane, pipeline: inbox.pipeline, metadata: { inbox: inbox.folder } });
      } catch (err) {
        this.#known.forget(paths);
        this.#log.error({ inbox: inbox.folder, files: paths, err: message(err) }, "inbox: enqueue failed; the files are tried again at the next rescan");
        continue;
      }
      const enqueued: { path: string; videoId: string }[] = [];
      const refused: string[] = [];
      accepted.forEach((a, i) => {
        const o = outcomes[i];
        inbox.seen.set(a.path, signature(a.size, a.mtimeNs));
        if (o?.ok) {
          enqueued.push({ path: a.path, videoId: o.id });
          this.#log.info({ inbox: inbox.folder, file: a.path, videoId: o.id }, "inbox: enqueued");
        } else {
          refused.push(a.path);
          this.#log.warn({ inbox: inbox.folder, file: a.path, err: o ? o.error : "no outcome returned" }, "inbox: file refused; left in place");
        }
      });
      this.#known.markEnqueued(enqueued);
      this.#known.forget(refused);
    }
  }
}

/** The real path `p` will have: its nearest existing ancestor resolved, the rest appended. */
async function realTarget(p: string): Promise<string> {
  const rest: string[] = [];
  let current = p;
  for (;;) {
    try {
      return join(await realpath(current), ...rest);
    } catch (err) {
      const up = dirname(current);
      if (errno(err) !== "ENOENT" || up === current) throw err;
      rest.unshift(basename(current));
      current = up;
    }
  }
}

/**
 * Moves `from` to `to`, or to `name-1.ext`, `name-2.ext`, ... when taken; never overwrites.
 * A hard link claims the name atomically (EEXIST when taken); across file systems it is an
 * exclusive copy instead. Returns where the file went.
 */
export async function moveWithoutClobbering(from: string, to: string): Promise<string> {
  const ext = extname(to);
  const stem = to.slice(0, to.length - ext.length);
  for (let n = 0; n < 10_000; n++) {
    const candidate = n === 0 ? to : `${stem}-${n}${ext}`;
    try {
      await link(from, candidate);
    } catch (err) {
      const code = errno(err);
      if (code === "EEXIST") continue;
      if (code !== "EXDEV" && code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "EMLINK") throw err;
      try {
        await copyFile(from, candidate, constants.COPYFILE_EXCL);
      } catch (copyErr) {
        if (errno(copyErr) === "EEXIST") continue;
        await unlink(candidate).catch(() => undefined); // no partial copy left behind
        throw copyErr;
      }
    }
    await unlink(from);
    return candidate;
  }
  throw new Error(`no free name for ${to} (tried ${to} and 9999 suffixes)`);
}
