import { accessSync, constants, realpathSync, statSync } from "node:fs";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { InputError } from "./errors.js";

/**
 * Resolves a video path the way the daemon will open it and checks that it is a readable regular
 * file inside one of the allowed roots. Symlinks and `..` are resolved first, so neither can
 * lead out of a root. Returns the real path, which is what gets recorded.
 *
 * Synchronous: it runs in the path checker's worker thread (path-checker.ts), where blocking on
 * a slow or hung file system is harmless; the event loop uses validateVideoPath / PathChecker.
 * `roots` are the real paths of the allowed roots (realRootsSync).
 */
export function checkVideoPathSync(input: unknown, allowedRoots: readonly string[], roots: readonly string[], cwd: string): string {
  if (typeof input !== "string" || input.length === 0) throw new InputError("invalid", String(input), "empty path");
  if (input.includes("\0")) throw new InputError("invalid", input, `path contains a NUL byte: ${JSON.stringify(input)}`);
  const shown = JSON.stringify(input);
  if (allowedRoots.length === 0) {
    throw new InputError("no-roots", input, `refusing ${shown}: no allowedRoots are configured (set allowedRoots in the config file or VQD_ALLOWEDROOTS)`);
  }
  const absolute = resolve(cwd, input);
  let real: string;
  try {
    real = realpathSync.native(absolute);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new InputError("missing", input, `no such file: ${shown}`, { cause: err });
    if (code === "ELOOP") throw new InputError("invalid", input, `symlink loop: ${shown}`, { cause: err });
    throw new InputError("unreadable", input, `cannot resolve ${shown}: ${(err as Error).message}`, { cause: err });
  }
  if (!roots.some((root) => isInside(real, root))) {
    const via = real === absolute ? "" : ` (resolves to ${JSON.stringify(real)})`;
    throw new InputError("outside-roots", input, `refusing ${shown}${via}: outside the allowed roots ${allowedRoots.map((r) => JSON.stringify(r)).join(", ")}`);
  }
  const info = statSync(real);
  if (!info.isFile()) {
    throw new InputError("not-a-file", input, `not a regular file: ${shown} is a ${info.isDirectory() ? "directory" : "special file"}`);
  }
  try {
    accessSync(real, constants.R_OK);
  } catch (err) {
    throw new InputError("unreadable", input, `cannot read ${shown}: permission denied`, { cause: err });
  }
  return real;
}

/** The real paths of the allowed roots; a root that does not exist (yet) can hold nothing and is skipped. */
export function realRootsSync(roots: readonly string[]): string[] {
  const out: string[] = [];
  for (const r of roots) {
    try {
      out.push(realpathSync.native(r));
    } catch {
      // skipped: see above
    }
  }
  return out;
}

function isInside(path: string, root: string): boolean {
  if (path === root) return true; // the root itself: refused below as a directory
  const rel = relative(root, path);
  return rel.length > 0 && !rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel);
}
