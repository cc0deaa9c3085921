/**
 * sd_notify through src/daemon/systemd-notify.ts against a datagram socket the test listens on
 * (test/systemd/notify-listener.ts): READY=1, then WATCHDOG=1 every WATCHDOG_USEC/2, then
 * STOPPING=1 on SIGTERM; first from a small script that uses the notifier, then from the real
 * daemon (`vqd start`) once it is wired to the notifier.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createNotifier, queueStatusText, watchdogIntervalMs } from "../../src/daemon/systemd-notify.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { makeVqdEnv, type VqdEnv } from "../support/vqd-env.js";
import { inOrder, listenNotify, type NotifyListener } from "./notify-listener.js";
import { waitFor as poll } from "../support/wait.js";

const here = dirname(fileURLToPath(import.meta.url));
const distSrc = resolve(here, "../../src");
const NOTIFIER_URL = pathToFileURL(join(distSrc, "daemon/systemd-notify.js")).href;

describe("notifier settings", () => {
  it("is null without NOTIFY_SOCKET", () => {
    assert.equal(createNotifier({}), null);
    assert.equal(createNotifier({ NOTIFY_SOCKET: "" }), null);
  });

  it("pings at half of WATCHDOG_USEC, and only for the pid WATCHDOG_PID names", () => {
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "1000000" }), 500);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "30000000" }), 15_000);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "1000" }), 1);
    assert.equal(watchdogIntervalMs({}), null);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "0" }), null);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "1e6" }), null);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "1000000", WATCHDOG_PID: "4242" }, 4242), 500);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "1000000", WATCHDOG_PID: "4242" }, 4243), null);
    assert.equal(createNotifier({ NOTIFY_SOCKET: "/run/x.sock", WATCHDOG_USEC: "2000000" })?.watchdogIntervalMs, 1000);
  });

  it("formats the queue depth for STATUS=", () => {
    assert.equal(
      queueStatusText({ depth: { high: 1, normal: 3, low: 0 }, inFlight: 2, workers: { size: 3, busy: 2 } }),
      "queued 4 (high 1, normal 3, low 0), running 2, workers 2/3 busy",
    );
  });
});

describe("notifier over a datagram socket", () => {
  let listener: NotifyListener;
  before(async () => {
    listener = await listenNotify();
  });
  after(async () => {
    await listener?.close();
  });

  it("sends messages in call order, one line of STATUS, and skips an unchanged STATUS", async () => {
    const start = listener.fields().length;
    const n = createNotifier({ NOTIFY_SOCKET: listener.path, PATH: process.env.PATH });
    assert.ok(n);
    await Promise.all([n.status("depth 1\nsecond line"), n.status("depth 1\nsecond line"), n.status("depth 2"), n.watchdog(), n.watchdog()]);
    await n.close();
    const got = listener.fields().slice(start);
    // The second watchdog() came while the first was still queued: one ping says the same.
    assert.deepEqual(got, ["STATUS=depth 1 second line", "STATUS=depth 2", "WATCHDOG=1"]);
  });

  it("never throws when systemd-notify is missing; it logs once", async () => {
    const warnings: string[] = [];
    const logger = { warn: (_o: object, m?: string) => warnings.push(m ?? ""), debug: () => undefined };
    const n = createNotifier({ NOTIFY_SOCKET: listener.path }, { binary: "/nonexistent/systemd-notify", logger });
    assert.ok(n);
    await n.ready("x");
    await n.watchdog();
    await n.stopping();
    await n.close();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? "", /not found/);
  });

  it("a process using the notifier sends READY=1, then WATCHDOG=1, then STOPPING=1 on SIGTERM", async () => {
    const start = listener.datagrams.length;
    const fields = (): string[] => listener.datagrams.slice(start).flatMap((d) => d.split("\n")).filter((f) => f !== "BARRIER=1");
    const script = `
      const { createNotifier } = await import(${JSON.stringify(NOTIFIER_URL)});
      const n = createNotifier(process.env);
      if (!n) process.exit(3);
      process.stdout.write(JSON.stringify({ interval: n.watchdogIntervalMs }) + "\\n");
      n.startWatchdog();
      await n.ready("ready: 0 queued");
      const keepAlive = setInterval(() => {}, 60000);
      process.once("SIGTERM", async () => {
        await n.stopping("draining");
        await n.close();
        clearInterval(keepAlive);
      });
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      env: { PATH: process.env.PATH, NOTIFY_SOCKET: listener.path, WATCHDOG_USEC: "1000000" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exit = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
    try {
      const has = (seq: string[]) => () => inOrder(fields(), seq);
      await waitUntil(has(["READY=1"]), 10_000, "READY=1", fields);
      await waitUntil(has(["READY=1", "WATCHDOG=1"]), 5_000, "WATCHDOG=1 after READY=1", fields);
      child.kill("SIGTERM");
      await waitUntil(has(["READY=1", "WATCHDOG=1", "STOPPING=1"]), 10_000, "STOPPING=1 after SIGTERM", fields);
      assert.equal(await exit, 0);
      assert.deepEqual(JSON.parse(out), { interval: 500 });
      const got = fields();
      assert.ok(got.includes(`MAINPID=${child.pid}`), `READY=1 announces the main pid: ${JSON.stringify(got)}`);
      assert.ok(got.includes("STATUS=ready: 0 queued") && got.includes("STATUS=draining"), JSON.stringify(got));
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});

describe("the daemon under a Type=notify unit", () => {
  let listener: NotifyListener | undefined;
  let srv: TestNatsServer | undefined;
  let env: VqdEnv | undefined;
  after(async () => {
    await env?.cleanup();
    await srv?.stop();
    await listener?.close();
  });

  it(
    "`vqd start` sends READY=1, then WATCHDOG=1, then STOPPING=1 on SIGTERM",
    async () => {
      listener = await listenNotify();
      srv = await startNatsServer();
      env = await makeVqdEnv({
        natsUrl: srv.url,
        extra: {
          NOTIFY_SOCKET: listener.path,
          WATCHDOG_USEC: "1000000",
          VQD_TELEMETRY__ENABLED: "false",
          VQD_WORKERS__SHUTDOWNDEADLINEMS: "500",
          VQD_DEFAULTPIPELINE: "noop",
          VQD_LOGGING__LEVEL: "info",
        },
      });
      const l = listener;
      const has = (seq: string[]) => () => inOrder(l.fields(), seq);
      const daemon = env.spawnDaemon();
      await daemon.ready();
      await waitUntil(has(["READY=1"]), 10_000, "READY=1", () => l.fields());
      await waitUntil(has(["READY=1", "WATCHDOG=1"]), 5_000, "WATCHDOG=1 after READY=1", () => l.fields());
      daemon.child.kill("SIGTERM");
      await waitUntil(has(["READY=1", "WATCHDOG=1", "STOPPING=1"]), 15_000, "STOPPING=1 after SIGTERM", () => l.fields());
      assert.equal(await daemon.exited(), 0, daemon.output());
      assert.ok(l.fields().includes(`MAINPID=${daemon.child.pid}`), JSON.stringify(l.fields()));
    },
  );
});

async function waitUntil(test: () => boolean, timeoutMs: number, what: string, show: () => unknown): Promise<void> {
  await poll(test, timeoutMs, what, 20, () => `received ${JSON.stringify(show())}`);
}
