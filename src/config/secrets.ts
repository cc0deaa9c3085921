/**
 * Secret files: `credential:NAME` paths (systemd LoadCredential=), the load-time readability
 * check, and reading a secret given inline or by file.
 */
import fs from "node:fs";
import path from "node:path";
import { ConfigError } from "./errors.js";

export const CREDENTIAL_PREFIX = "credential:";

interface Where {
  keyPath: string;
  source: string;
  line?: number;
}

/**
 * `credential:NAME` -> `$CREDENTIALS_DIRECTORY/NAME` (taken from `env`, not the process);
 * any other value is returned unchanged.
 */
export function resolveCredentialPath(value: string, env: NodeJS.ProcessEnv, where: Where): string {
  if (!value.startsWith(CREDENTIAL_PREFIX)) return value;
  const name = value.slice(CREDENTIAL_PREFIX.length);
  if (name === "" || name.includes("/") || name === "." || name === "..") {
    throw new ConfigError({
      ...where,
      reason: `"${value}" must name a credential as credential:NAME (NAME without "/")`,
    });
  }
  const dir = env.CREDENTIALS_DIRECTORY;
  if (!dir) {
    throw new ConfigError({
      ...where,
      reason: `"${value}" needs CREDENTIALS_DIRECTORY, which is not set (run vqd under systemd with LoadCredential=${name}:PATH, or give a file path instead)`,
    });
  }
  return path.join(dir, name);
}

/** Throws a ConfigError naming the key unless `file` is a readable regular file. */
export function assertReadableFile(file: string, where: Where): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, "r");
    if (!fs.fstatSync(fd).isFile()) {
      throw new ConfigError({ ...where, reason: `must name a regular file, but ${file} is not one` });
    }
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError({ ...where, reason: `cannot read ${file}: ${describeFsError(e)}`, cause: e });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * The secret given inline, or else the trimmed content of `file`; undefined when neither is set.
 * Setting both is rejected at load time, and here too.
 */
export function resolveSecret(inline: string, file: string): string | undefined {
  if (inline !== "" && file !== "") {
    throw new ConfigError({
      keyPath: "",
      reason: `a secret was given both inline and as the file ${file}; set one or the other`,
      source: "resolveSecret",
    });
  }
  if (inline !== "") return inline;
  if (file === "") return undefined;
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch (e) {
    throw new ConfigError({ keyPath: "", reason: `cannot read secret file: ${describeFsError(e)}`, source: file, cause: e });
  }
}

export function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case "ENOENT":
      return "no such file or directory";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "is a directory";
    case "ENOTDIR":
      return "a parent path is not a directory";
    default:
      return e instanceof Error ? e.message : String(e);
  }
}
