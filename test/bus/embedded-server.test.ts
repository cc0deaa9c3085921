import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmod, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import {
  connectNats,
  EmbeddedNatsServer,
  isNatsServerNotFound,
  natsStats,
  NatsServerNotFoundError,
  NatsServerStartError,
  readEmbeddedRuntime,
  type EmbeddedRestartInfo,
} from "../../src/bus/index.js";
import { waitFor } from "../support/wait.js";
import { alive } from "../support/processes.js";
import { captureLogger } from "./capture-logger.js";
import { freePort, holdPort, type HeldPort } from "../support/ports.js";


async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

describe("EmbeddedNatsServer", () => {
  let dir: string;
  let held: HeldPort;
  let server: EmbeddedNatsServer;
  let runtimeFile: string;
  const log = captureLogger();
  const restarts: EmbeddedRestartInfo[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "vqd-embedded-test-"));
    runtimeFile = join(dir, "run", "nats.json");
    held = await holdPort();
    server = new EmbeddedNatsServer({
      port: held.port,
      storeDir: join(dir, "store"),
      runtimeFile,
      logger: log,
      readyTimeoutMs: 10_000,
      onRestart: (info) => restarts.push(info),
    });
  });

  after(async () => {
    await server?.stop();
    await held?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("starts on a free port when the configured one is taken, and says so", async () => {
    const info = await server.start();
    assert.notEqual(info.port, held.port);
    assert.equal(server.port, info.port);
    assert.equal(info.url, `nats://127.0.0.1:${info.port}`);
    assert.equal(server.url, info.url);
    assert.equal(info.pid, server.pid);
    assert.ok(alive(info.pid));
    assert.ok(
      log.lines.some((l) => l.level === "warn" && l.msg.includes(`port ${held.port}`) && l.msg.includes(`${info.port}`)),
      "the port change is logged",
    );
    assert.equal(await server.start(), info, "start() twice returns the same result");
  });

  it("has JetStream enabled", async () => {
    const nc = await connectNats({ servers: [server.url] });
    try {
      const jsm = await jetstreamManager(nc);
      const acct = await jsm.getAccountInfo();
      assert.equal(typeof acct.limits, "object");
    } finally {
      await nc.close();
    }
  });

  it("writes a runtime file that readEmbeddedRuntime() reads back", async () => {
    const rt = await readEmbeddedRuntime(runtimeFile);
    assert.ok(rt);
    assert.deepEqual(
      { url: rt.url, pid: rt.pid, port: rt.port },
      { url: server.url, pid: server.pid, port: server.port },
    );
    assert.ok(!Number.isNaN(Date.parse(rt.startedAt)));
  });

  it("restarts on the same port after kill -9, and clients reconnect", async () => {
    const nc = await connectNats({ servers: [server.url], reconnectTimeWaitMs: 100 });
    try {
      const oldPid = server.pid!;
      const port = server.port;
      process.kill(oldPid, "SIGKILL");
      await waitFor(() => restarts.length >= 1, 10_000, "the restart");
      assert.equal(server.restarts, 1);
      const r = restarts[0]!;
      assert.equal(r.port, port);
      assert.notEqual(r.pid, oldPid);
      assert.equal(r.restarts, 1);
      assert.equal(r.delayMs, 100);
      assert.equal(server.port, port);
      assert.equal(server.pid, r.pid);
      assert.ok(!alive(oldPid));
      assert.ok(log.lines.some((l) => l.level === "error" && /exited unexpectedly.*SIGKILL/.test(l.msg)));

      await waitFor(() => natsStats(nc).reconnects >= 1, 10_000, "the client to reconnect");
      await nc.flush();
      const rt = await readEmbeddedRuntime(runtimeFile);
      assert.equal(rt?.pid, r.pid, "runtime file names the new pid");
      // JetStream state survives on the same store dir.
      await (await jetstreamManager(nc)).getAccountInfo();

      // A second crash soon after: the backoff doubles.
      process.kill(r.pid, "SIGKILL");
      await waitFor(() => restarts.length >= 2, 10_000, "the second restart");
      assert.equal(restarts[1]!.delayMs, 200);
      assert.equal(restarts[1]!.port, port);
      assert.equal(server.restarts, 2);
      await waitFor(() => natsStats(nc).reconnects >= 2, 10_000, "the client to reconnect again");
    } finally {
      await nc.close();
    }
  });

  it("stop() kills the server and removes the runtime file; stop() twice is fine", async () => {
    const pid = server.pid!;
    const p1 = server.stop();
    const p2 = server.stop();
    assert.equal(p1, p2, "the same promise");
    await p1;
    await server.stop();
    assert.ok(!alive(pid), "process is gone");
    assert.equal(server.running, false);
    assert.equal(await exists(runtimeFile), false);
    assert.equal(await readEmbeddedRuntime(runtimeFile), null);
    await assert.rejects(server.start(), /stopped/);
  });
});

describe("EmbeddedNatsServer lifecycle edges", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "vqd-embedded-edges-"));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("stop() during the restart backoff cancels the restart", async () => {
    let restarted = 0;
    const s = new EmbeddedNatsServer({
      port: await freePort(),
      storeDir: join(dir, "a"),
      runtimeFile: join(dir, "a.json"),
      onRestart: () => restarted++,
    });
    try {
      const { pid } = await s.start();
      process.kill(pid, "SIGKILL");
      await waitFor(() => !s.running, 5000, "the exit to be noticed");
      await s.stop();
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(restarted, 0);
      assert.equal(s.running, false);
      assert.equal(await exists(join(dir, "a.json")), false);
    } finally {
      await s.stop();
    }
  });

  it("stops a leftover nats-server from a previous run on the same store dir", async () => {
    const storeDir = join(dir, "b");
    const runtimeFile = join(dir, "b.json");
    const oldPort = await freePort();
    const orphan = spawn("nats-server", ["-js", "-a", "127.0.0.1", "-p", String(oldPort), "-sd", storeDir], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    const orphanExit = new Promise((r) => orphan.once("exit", r));
    try {
      await new Promise<void>((resolve, reject) => {
        let err = "";
        orphan.stderr!.on("data", (d: Buffer) => {
          err += d.toString();
          if (err.includes("Server is ready")) resolve();
        });
        orphan.once("exit", () => reject(new Error(`orphan nats-server exited: ${err}`)));
      });
      await writeFile(
        runtimeFile,
        JSON.stringify({ url: `nats://127.0.0.1:${oldPort}`, pid: orphan.pid, port: oldPort, startedAt: new Date().toISOString() }),
      );
      const log = captureLogger();
      const s = new EmbeddedNatsServer({ port: oldPort, storeDir, runtimeFile, logger: log });
      try {
        const info = await s.start();
        await orphanExit;
        assert.notEqual(info.pid, orphan.pid);
        assert.equal(info.port, oldPort, "the port was freed by stopping the leftover");
        assert.ok(log.lines.some((l) => l.level === "warn" && /leftover/.test(l.msg)));
      } finally {
        await s.stop();
      }
    } finally {
      orphan.kill("SIGKILL");
    }
  });
});

describe("EmbeddedNatsServer start-up failures", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "vqd-embedded-fail-"));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("a missing binary gives NatsServerNotFoundError with an install hint", async () => {
    const s = new EmbeddedNatsServer({
      binary: join(dir, "no-such-nats-server"),
      port: 0,
      storeDir: join(dir, "s1"),
      runtimeFile: join(dir, "s1.json"),
    });
    await assert.rejects(s.start(), (err: unknown) => {
      assert.ok(err instanceof NatsServerNotFoundError, `got ${String(err)}`);
      assert.ok(isNatsServerNotFound(err));
      assert.match(err.message, /apt-get install nats-server/);
      assert.match(err.message, /nats\.embedded\.binary/);
      assert.match(err.message, /nats\.servers/);
      return true;
    });
    await s.stop();
    assert.equal(await exists(join(dir, "s1.json")), false);
  });

  it("a server that never becomes ready times out with its stderr in the error", async () => {
    const script = join(dir, "slow-server.sh");
    await writeFile(script, "#!/bin/sh\necho 'pretending to start' >&2\nexec sleep 30\n");
    await chmod(script, 0o755);
    const s = new EmbeddedNatsServer({
      binary: script,
      port: 0,
      storeDir: join(dir, "s2"),
      runtimeFile: join(dir, "s2.json"),
      readyTimeoutMs: 500,
    });
    await assert.rejects(s.start(), (err: unknown) => {
      assert.ok(err instanceof NatsServerStartError, `got ${String(err)}`);
      assert.match(err.message, /did not become ready within 500ms/);
      assert.match(err.message, /pretending to start/);
      return true;
    });
    await s.stop();
  });

  it("a server that exits at once reports its exit code and stderr", async () => {
    const script = join(dir, "bad-server.sh");
    await writeFile(script, "#!/bin/sh\necho 'nats-server: bad flag' >&2\nexit 3\n");
    await chmod(script, 0o755);
    const s = new EmbeddedNatsServer({
      binary: script,
      port: 0,
      storeDir: join(dir, "s3"),
      runtimeFile: join(dir, "s3.json"),
    });
    await assert.rejects(s.start(), /exited before it was ready \(exit code 3[;)][\s\S]*bad flag/);
    await s.stop();
  });

  it("refuses a non-loopback bind address", async () => {
    const s = new EmbeddedNatsServer({
      host: "0.0.0.0",
      port: 0,
      storeDir: join(dir, "s4"),
      runtimeFile: join(dir, "s4.json"),
    });
    await assert.rejects(s.start(), /loopback/);
    await s.stop();
  });
});

describe("readEmbeddedRuntime", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "vqd-runtime-"));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("returns null for a missing file", async () => {
    assert.equal(await readEmbeddedRuntime(join(dir, "missing.json")), null);
  });

  it("returns null for garbage", async () => {
    const f = join(dir, "garbage.json");
    await writeFile(f, "{not json");
    assert.equal(await readEmbeddedRuntime(f), null);
  });

  it("returns null when the pid is dead, the info when it is alive", async () => {
    const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    const deadPid = child.pid!;
    await new Promise((r) => child.once("exit", r));
    const port = await freePort();
    const f = join(dir, "rt.json");
    const info = { url: `nats://127.0.0.1:${port}`, pid: deadPid, port, startedAt: new Date().toISOString() };
    await writeFile(f, JSON.stringify(info));
    assert.equal(await readEmbeddedRuntime(f), null);
    await writeFile(f, JSON.stringify({ ...info, pid: process.pid }));
    assert.deepEqual(await readEmbeddedRuntime(f), { ...info, pid: process.pid });
  });
});
