import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { defaultConfig, type Config } from "../../src/config/index.js";
import { configSchema } from "../../src/config/schema.js";
import type { InboxEnqueue, InboxEnqueueOptions } from "../../src/intake/index.js";
import type { Logger } from "../../src/shared/logger.js";
import { waitFor as poll } from "../support/wait.js";

export interface LogLine {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

/** A Logger that keeps every line. */
export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  const logger: Logger = {
    trace: at("trace"),
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    fatal: at("fatal"),
    child: () => logger,
  };
  return { logger, lines };
}

export interface EnqueueCall {
  paths: string[];
  options: InboxEnqueueOptions;
  at: number;
  /** Size of each file when the enqueue was called. */
  sizes: number[];
  ids: string[];
}

/** An enqueue that records its calls and accepts everything with ids v1, v2, ... */
export function fakeEnqueue(): { enqueue: InboxEnqueue; calls: EnqueueCall[]; paths: () => string[] } {
  const calls: EnqueueCall[] = [];
  let next = 0;
  const enqueue: InboxEnqueue = async (paths, options) => {
    const ids = paths.map(() => `v${++next}`);
    calls.push({ paths: [...paths], options, at: Date.now(), sizes: paths.map((p) => fs.statSync(p).size), ids });
    return ids.map((id) => ({ ok: true as const, id }));
  };
  return { enqueue, calls, paths: () => calls.flatMap((c) => c.paths) };
}

/** A config whose inboxes get the schema defaults for the keys left out. */
export function inboxConfig(base: string, allowedRoots: string[], inboxes: Record<string, unknown>[]): Config {
  const parsed = configSchema.parse({ allowedRoots, inboxes });
  return { ...defaultConfig(base), allowedRoots: parsed.allowedRoots, inboxes: parsed.inboxes };
}

export async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  await poll(condition, timeoutMs, what, 20);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A fresh real (symlink-free) temporary directory. */
export function tempDir(prefix: string): string {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
}
