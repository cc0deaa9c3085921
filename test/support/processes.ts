/**
 * Looking at processes from tests (Linux /proc): which ones run with an argument, whether one
 * is still alive (zombies count as dead) or gone for good.
 */
import fs from "node:fs";

/** Pids of processes whose command line contains `needle` (read from /proc). */
export function pidsWithArg(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.includes(needle)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids.filter((p) => p !== process.pid);
}

/**
 * True while a process with this pid exists and is not a zombie. (Our direct children are reaped
 * by Node, so for them `process.kill(pid, 0)` throws once they are dead; grandchildren are
 * reparented to PID 1, which in some containers never reaps them, so they linger as zombies.)
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** True once `process.kill(pid, 0)` throws ESRCH: the process is gone and reaped. */
export function reaped(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}
