import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { nkeys } from "@nats-io/transport-node";
import { pino } from "pino";
import {
  connectNats,
  isNatsAuthError,
  isNatsUnavailable,
  natsStats,
  NatsAuthError,
  NatsUnavailableError,
} from "../../src/bus/index.js";
import { waitFor } from "../support/wait.js";
import { captureLogger } from "./capture-logger.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { freePort } from "../support/ports.js";


describe("connectNats", () => {
  let srv: TestNatsServer;
  before(async () => {
    srv = await startNatsServer();
  });
  after(async () => {
    await srv?.stop();
  });

  it("connects to the harness server, round-trips a request and reaches JetStream", async () => {
    const nc = await connectNats({ servers: [srv.url], name: "vqd-test" });
    try {
      const sub = nc.subscribe("echo");
      void (async () => {
        for await (const m of sub) m.respond(m.data);
      })();
      const reply = await nc.request("echo", "hi", { timeout: 2000 });
      assert.equal(reply.string(), "hi");
      const info = await (await jetstreamManager(nc)).getAccountInfo();
      assert.equal(typeof info.streams, "number");
      const stats = natsStats(nc);
      assert.equal(stats.reconnects, 0);
      assert.equal(stats.connected, true);
    } finally {
      await nc.close();
    }
    assert.equal(natsStats(nc).connected, false);
  });

  it("accepts a pino logger", async () => {
    const nc = await connectNats({ servers: [srv.url], logger: pino({ level: "silent" }) });
    await nc.close();
  });

  it("fails fast with NatsUnavailableError (exit code 69) when nothing listens", async () => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const t0 = Date.now();
    await assert.rejects(connectNats({ servers: [url], timeoutMs: 2000 }), (err: unknown) => {
      assert.ok(err instanceof NatsUnavailableError, `got ${String(err)}`);
      assert.ok(isNatsUnavailable(err));
      assert.equal(err.exitCode, 69);
      assert.deepEqual(err.servers, [url]);
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.match(err.message, /refused/);
      assert.ok(err.cause instanceof Error);
      return true;
    });
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0}ms`);
  });

  it("rejects an empty server list instead of falling back to a default", async () => {
    await assert.rejects(connectNats({ servers: [] }), NatsUnavailableError);
  });

  it("reports a missing creds file clearly", async () => {
    await assert.rejects(
      connectNats({ servers: [srv.url], credsFile: "/nonexistent/vqd.creds" }),
      /cannot read NATS creds file.*\/nonexistent\/vqd\.creds/,
    );
  });
});

describe("connectNats reconnects", () => {
  let srv: TestNatsServer;
  before(async () => {
    srv = await startNatsServer();
  });
  after(async () => {
    await srv?.stop();
  });

  it("counts a reconnect after the server is killed and restarted on the same port", async () => {
    const log = captureLogger();
    const nc = await connectNats({ servers: [srv.url], logger: log, reconnectTimeWaitMs: 100 });
    try {
      const stats = natsStats(nc);
      const oldPid = srv.pid;
      await srv.kill9();
      await waitFor(() => stats.disconnects >= 1, 5000, "the disconnect");
      assert.equal(stats.connected, false);
      await srv.restart();
      assert.notEqual(srv.pid, oldPid);
      await waitFor(() => stats.reconnects >= 1, 10_000, "the reconnect");
      assert.equal(stats.reconnects, 1);
      assert.equal(stats.connected, true);
      assert.ok(stats.lastReconnectAt instanceof Date);
      await nc.flush();
      assert.ok(log.lines.some((l) => l.level === "warn" && /NATS disconnected/.test(l.msg)), "disconnect logged");
      assert.ok(log.lines.some((l) => l.level === "info" && /NATS reconnected/.test(l.msg)), "reconnect logged");
    } finally {
      await nc.close();
    }
  });
});

describe("connectNats with token auth", () => {
  let srv: TestNatsServer;
  before(async () => {
    srv = await startNatsServer({ jetstream: false, args: ["--auth", "s3cret"] });
  });
  after(async () => {
    await srv?.stop();
  });

  it("connects with the right token", async () => {
    const nc = await connectNats({ servers: [srv.url], token: "s3cret" });
    await nc.flush();
    await nc.close();
  });

  it("rejects a wrong token with NatsAuthError", async () => {
    await assert.rejects(connectNats({ servers: [srv.url], token: "wrong" }), (err: unknown) => {
      assert.ok(err instanceof NatsAuthError, `got ${String(err)}`);
      assert.ok(isNatsAuthError(err));
      assert.ok(isNatsUnavailable(err), "an auth failure also means the bus is unavailable");
      assert.equal(err.exitCode, 77);
      assert.equal(err.method, "token");
      assert.match(err.message, /rejected the connection \(auth: token\)/);
      assert.match(err.message, /Authorization Violation/i);
      assert.match(err.message, new RegExp(srv.url.replace(/[.]/g, "\\.")));
      return true;
    });
  });

  it("rejects a missing token with NatsAuthError", async () => {
    await assert.rejects(connectNats({ servers: [srv.url] }), /auth: none/);
  });
});

describe("connectNats with nkey auth", () => {
  let srv: TestNatsServer;
  let dir: string;
  let seedFile: string;
  let otherSeedFile: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "vqd-nkey-test-"));
    const user = nkeys.createUser();
    const other = nkeys.createUser();
    seedFile = join(dir, "user.nk");
    otherSeedFile = join(dir, "other.nk");
    await writeFile(seedFile, `# vqd test user\n${new TextDecoder().decode(user.getSeed())}\n`);
    await writeFile(otherSeedFile, new TextDecoder().decode(other.getSeed()));
    const conf = join(dir, "server.conf");
    await writeFile(conf, `authorization {\n  users: [ { nkey: "${user.getPublicKey()}" } ]\n}\n`);
    srv = await startNatsServer({ jetstream: false, args: ["-c", conf] });
  });
  after(async () => {
    await srv?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("connects with the seed file of an allowed user", async () => {
    const nc = await connectNats({ servers: [srv.url], nkeySeedFile: seedFile });
    await nc.flush();
    await nc.close();
  });

  it("rejects an unknown user's seed with NatsAuthError", async () => {
    await assert.rejects(connectNats({ servers: [srv.url], nkeySeedFile: otherSeedFile }), (err: unknown) => {
      assert.ok(err instanceof NatsAuthError, `got ${String(err)}`);
      assert.equal(err.method, "nkey");
      return true;
    });
  });
});
