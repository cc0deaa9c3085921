/**
 * Atomic step outputs: a file is produced under a hidden temporary name in its final directory
 * (`<dir>/.<name>.tmp-<random>`), flushed to disk, and renamed into place only when complete.
 * A failure removes the temporary file; a crash can leave one behind, which
 * `cleanStaleTemps` removes before the step runs again. A reader never sees a partial output.
 *
 * The metadata calls here (mkdir, readdir, rename, open, close, unlink) are synchronous: each takes
 * microseconds on the output folder, while a round trip through libuv's thread pool costs ~150 us
 * of CPU on a 2-core VM (two cross-thread wake-ups), which was ~20% of the daemon's CPU per video
 * in the pipeline bench. fsync stays asynchronous: it waits for the disk, for as long as the disk
 * takes, and must not stall the event loop meanwhile.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

const TEMP_NAME = /^\.(.+)\.tmp-[0-9a-f]{12}$/;

/** The temporary path an output `finalPath` is written to. */
export function tempPathFor(finalPath: string): string {
  const dir = path.dirname(finalPath);
  return path.join(dir, `.${path.basename(finalPath)}.tmp-${randomBytes(6).toString("hex")}`);
}

/** True for names made by tempPathFor. */
export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/**
 * Removes leftover temporary files in `dir` (all of them, or only those of the outputs named in
 * `names`). A missing directory is fine. Returns the names removed.
 */
export function cleanStaleTemps(dir: string, names?: readonly string[]): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const removed: string[] = [];
  for (const entry of entries) {
    const m = TEMP_NAME.exec(entry);
    if (!m || (names && !names.includes(m[1] ?? ""))) continue;
    fs.rmSync(path.join(dir, entry), { force: true, recursive: true });
    removed.push(entry);
  }
  return removed;
}

const fsync = promisify(fs.fsync);

/** Flushes a file's data to disk (best effort for file systems that refuse fsync). */
async function fsyncPath(file: string): Promise<void> {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, "r");
    await fsync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "ENOTSUP" && code !== "EISDIR" && code !== "EPERM") throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Moves a finished temporary file into place: fsync the data, rename, fsync the directory, so
 * that after a power loss the final name holds either nothing or the whole file.
 */
export async function commitTemp(tempPath: string, finalPath: string): Promise<void> {
  await fsyncPath(tempPath);
  fs.renameSync(tempPath, finalPath);
  await fsyncPath(path.dirname(finalPath));
}

/** Removes a temporary file or folder after a failure; a failure to remove it is not the error to report. */
function removeQuietly(temp: string): void {
  try {
    fs.rmSync(temp, { force: true, recursive: true });
  } catch {
    // cleanStaleTemps removes it before the step runs again.
  }
}

/**
 * Produces `finalPath` atomically: `produce` writes the temporary path it is given; when it
 * resolves, the file is renamed into place; when it throws, the temporary file is removed.
 * The directory is created if needed. Resolves with what `produce` returned.
 */
export async function writeAtomic<T>(finalPath: string, produce: (tempPath: string) => Promise<T>): Promise<T> {
  fs.mkdirSync(path.dirname(finalPath), { recursive: true });
  const temp = tempPathFor(finalPath);
  try {
    const result = await produce(temp);
    await commitTemp(temp, finalPath);
    return result;
  } catch (e) {
    removeQuietly(temp);
    throw e;
  }
}

/**
 * Several outputs at once (the exec step): each name gets a temporary path; all are renamed
 * when `produce` succeeds, all removed when it fails. `required` outputs that were not written
 * make it fail.
 */
export async function writeAtomicMany<T>(
  dir: string,
  names: readonly string[],
  produce: (tempPaths: Readonly<Record<string, string>>) => Promise<T>,
  onMissing: (name: string) => Error,
): Promise<{ result: T; files: Record<string, string> }> {
  fs.mkdirSync(dir, { recursive: true });
  const temps: Record<string, string> = {};
  for (const name of names) temps[name] = tempPathFor(path.join(dir, name));
  try {
    const result = await produce(temps);
    for (const name of names) {
      const temp = temps[name] as string;
      if (!fs.existsSync(temp)) throw onMissing(name);
    }
    const files: Record<string, string> = {};
    for (const name of names) {
      const final = path.join(dir, name);
      await commitTemp(temps[name] as string, final);
      files[name] = final;
    }
    return { result, files };
  } catch (e) {
    for (const t of Object.values(temps)) removeQuietly(t);
    throw e;
  }
}
