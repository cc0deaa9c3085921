/** What a report records about the machine and the software it measured. */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { arch, cpus, hostname, platform, release, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Environment } from "./types.js";

const run = promisify(execFile);

/** The package root: dist/src/profiler/ -> ../../.. (the repository or the installed package). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** The built CLI the suites spawn (`vqd start`). */
export const VQD_BIN = resolve(dirname(fileURLToPath(import.meta.url)), "../bin/vqd.js");

export function vqdVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version?: string }).version ?? "unknown";
  } catch {
    return "unknown";
  }
}

async function output(cmd: string, args: readonly string[], cwd?: string): Promise<string | null> {
  try {
    const { stdout } = await run(cmd, args as string[], { cwd, timeout: 5000, maxBuffer: 1 << 20 });
    return stdout.trim();
  } catch {
    return null;
  }
}

/** The commit this code runs from, when it runs from a git checkout. */
export async function gitInfo(root = PACKAGE_ROOT): Promise<Environment["git"]> {
  if (!existsSync(join(root, ".git"))) return null;
  const commit = await output("git", ["rev-parse", "HEAD"], root);
  if (!commit || !/^[0-9a-f]{7,64}$/.test(commit)) return null;
  const status = await output("git", ["status", "--porcelain", "--untracked-files=no"], root);
  return { commit, dirty: status !== null && status.length > 0 };
}

export async function ffmpegVersion(binary: string): Promise<string | null> {
  const text = await output(binary, ["-hide_banner", "-version"]);
  const m = text ? /ffmpeg version (\S+)/.exec(text) : null;
  return m?.[1] ?? null;
}

export async function natsServerBinaryVersion(binary: string): Promise<string | null> {
  const text = await output(binary, ["--version"]);
  const m = text ? /v?(\d+\.\d+\.\d+\S*)/.exec(text) : null;
  return m?.[1] ?? null;
}

export async function collectEnvironment(known: { natsServer: string | null; sqlite: string | null; ffmpegBinary: string }): Promise<Environment> {
  const cpuList = cpus();
  const [git, ffmpeg] = await Promise.all([gitInfo(), ffmpegVersion(known.ffmpegBinary)]);
  return {
    node: process.version,
    v8: process.versions.v8,
    natsServer: known.natsServer,
    sqlite: known.sqlite,
    ffmpeg,
    vqd: vqdVersion(),
    platform: platform(),
    arch: arch(),
    osRelease: release(),
    cpuModel: cpuList[0]?.model.trim() ?? "unknown",
    cpuCount: cpuList.length,
    totalMemoryMB: Math.round(totalmem() / (1024 * 1024)),
    hostname: hostname(),
    git,
  };
}
