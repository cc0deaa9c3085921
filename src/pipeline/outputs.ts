/**
 * Atomic step outputs: a file is produced under a hidden temporary name in its final directory
 * (`<dir>/.<name>.tmp-<random>`), flushed to disk, and renamed into place only when complete.
 * A failure removes the temporary file; a crash can leave one behind, which
 * `cleanStaleTemps` removes before the step runs again. A reader never sees a partial output.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

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
export async function cleanStaleTemps(dir: string, names?: readonly string[]): Promise<string[]> {
  let entries: string[];
  try {
    entries = await fs.promises.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const removed: string[] = [];
  for (const entry of entries) {
    const m = TEMP_NAME.exec(entry);
    if (!m || (names && !names.includes(m[1] ?? ""))) continue;
    await fs.promises.rm(path.join(dir, entry), { force: true, recursive: true });
    removed.push(entry);
  }
  return removed;
}

/** Flushes a file's data to disk (best effort for file systems that refuse fsync). */
async function fsyncPath(file: string, flags: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(file, flags);
    await handle.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "ENOTSUP" && code !== "EISDIR" && code !== "EPERM") throw e;
  } finally {
    await handle?.close();
  }
}

/**
 * Moves a finished temporary file into place: fsync the data, rename, fsync the directory, so
 * that after a power loss the final name holds either nothing or the whole file.
 */
export async function commitTemp(tempPath: string, finalPath: string): Promise<void> {
  await fsyncPath(tempPath, "r");
  await fs.promises.rename(tempPath, finalPath);
  await fsyncPath(path.dirname(finalPath), "r");
}

/**
 * Produces `finalPath` atomically: `produce` writes the temporary path it is given; when it
 * resolves, the file is renamed into place; when it throws, the temporary file is removed.
 * The directory is created if needed. Resolves with what `produce` returned.
 */
export async function writeAtomic<T>(finalPath: string, produce: (tempPath: string) => Promise<T>): Promise<T> {
  await fs.promises.mkdir(path.dirname(finalPath), { recursive: true });
  const temp = tempPathFor(finalPath);
  try {
    const result = await produce(temp);
    await commitTemp(temp, finalPath);
    return result;
  } catch (e) {
    await fs.promises.rm(temp, { force: true, recursive: true }).catch(() => undefined);
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
  await fs.promises.mkdir(dir, { recursive: true });
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
    await Promise.all(Object.values(temps).map((t) => fs.promises.rm(t, { force: true, recursive: true }).catch(() => undefined)));
    throw e;
  }
}
