/**
 * A stand-in for systemd's end of sd_notify: an AF_UNIX/SOCK_DGRAM socket the test owns, with
 * every datagram received recorded in order. Node cannot bind a datagram unix socket, so a small
 * python3 program listens and prints each datagram as one JSON line. Like systemd, it closes the
 * file descriptor that `systemd-notify` passes with BARRIER=1 (python's recv() takes no
 * ancillary data, so the kernel closes it), which releases the sender at once. socat keeps that
 * descriptor open and would stall every `systemd-notify` for its 5 s barrier timeout.
 *
 * Not a test file (no `.test.` in the name).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const LISTENER = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("LISTENING", flush=True)
while True:
    data = s.recv(65536)
    print(json.dumps(data.decode("utf-8", "replace")), flush=True)
`;

export interface NotifyListener {
  /** The socket path: put it in NOTIFY_SOCKET. */
  readonly path: string;
  /** Every datagram received, in order. */
  readonly datagrams: readonly string[];
  /** The fields of every datagram, in order, without the BARRIER=1 handshakes. */
  fields(): string[];
  /** Resolves once `test(fields())` holds; rejects with what was received after timeoutMs. */
  waitFor(test: (fields: string[]) => boolean, timeoutMs: number, what: string): Promise<void>;
  close(): Promise<void>;
}

export async function listenNotify(): Promise<NotifyListener> {
  const dir = await mkdtemp(join(tmpdir(), "vqd-notify-"));
  const path = join(dir, "notify.sock");
  const child: ChildProcess = spawn("python3", ["-u", "-c", LISTENER, path], { stdio: ["ignore", "pipe", "pipe"] });
  const datagrams: string[] = [];
  const waiters = new Set<() => void>();
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`notify listener did not start: ${stderr}`)), 10_000);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run python3 for the notify listener: ${err.message}`));
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`notify listener exited: ${stderr}`));
    });
    const rl = createInterface({ input: child.stdout!, crlfDelay: Infinity });
    rl.on("line", (line) => {
      if (line === "LISTENING") {
        clearTimeout(timer);
        resolve();
        return;
      }
      datagrams.push(JSON.parse(line) as string);
      for (const w of waiters) w();
    });
  });

  const fields = (): string[] => datagrams.flatMap((d) => d.split("\n")).filter((f) => f !== "" && f !== "BARRIER=1");
  return {
    path,
    datagrams,
    fields,
    waitFor(test, timeoutMs, what) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!test(fields())) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received: ${JSON.stringify(fields())}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Index of the first field equal to `field` at or after `from`, or -1. */
export function indexOfField(fields: readonly string[], field: string, from = 0): number {
  for (let i = from; i < fields.length; i++) if (fields[i] === field) return i;
  return -1;
}

/** True when `sequence` appears in `fields` in this order (other fields may come between). */
export function inOrder(fields: readonly string[], sequence: readonly string[]): boolean {
  let at = 0;
  for (const want of sequence) {
    const i = indexOfField(fields, want, at);
    if (i === -1) return false;
    at = i + 1;
  }
  return true;
}
